#include "data/cifar_reader.h"

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/runtime.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {
const char* kFixHint = "re-extract cifar-10-binary.tar.gz, or pass --data-archive / --data-dir";
}

ImageSet ImageSet::slice(int64_t begin, int64_t end) const {
  return {images.slice(0, begin, end), labels.slice(0, begin, end)};
}

ImageSet ImageSet::select(const torch::Tensor& indices) const {
  auto idx = to_device_async(indices, images.device());
  return {images.index_select(0, idx), labels.index_select(0, idx)};
}

ImageSet ImageSet::to(const torch::Device& device) const {
  return {images.to(device), labels.to(device)};
}

std::vector<std::string> cifar10_files() {
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin", "test_batch.bin",   "batches.meta.txt"};
}

ImageSet read_cifar_batch(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw UserError("missing CIFAR-10 file " + file.string(), kExitBadInput);
  const auto bytes_on_disk = fs::file_size(file, ec);
  check_input(!ec, "cannot stat " + file.string() + ": " + ec.message());
  // Checked before reading: a wrong file of gigabytes is refused unread.
  check_input(bytes_on_disk % kRecordBytes == 0 || bytes_on_disk == 0,
              "truncated or corrupt CIFAR-10 file " + file.string() + ": " +
                  std::to_string(bytes_on_disk) + " bytes is not a whole number of " +
                  std::to_string(kRecordBytes) + "-byte records",
              kFixHint);
  const std::string raw = read_file(file);
  check_input(raw.size() == bytes_on_disk, "short read of " + file.string());
  return parse_cifar_batch(raw, file.string());
}

ImageSet parse_cifar_batch(std::string_view raw, const std::string& source) {
  check_input(!raw.empty(), "empty CIFAR-10 file " + source, kFixHint);
  check_input(raw.size() % kRecordBytes == 0,
              "truncated or corrupt CIFAR-10 file " + source + ": " + std::to_string(raw.size()) +
                  " bytes is not a whole number of " + std::to_string(kRecordBytes) + "-byte records",
              kFixHint);
  const int64_t n = static_cast<int64_t>(raw.size()) / kRecordBytes;

  // from_blob only views the bytes (never written); clone() below copies out.
  auto records = torch::from_blob(const_cast<char*>(raw.data()), {n, kRecordBytes}, torch::kUInt8);
  auto labels = records.select(1, 0).to(torch::kInt64);
  const int64_t max_label = labels.max().item<int64_t>();
  if (max_label >= kNumClasses) {
    const int64_t bad = (labels >= kNumClasses).nonzero()[0][0].item<int64_t>();
    throw UserError("corrupt CIFAR-10 file " + source + ": record " + std::to_string(bad) +
                    " has label " + std::to_string(labels[bad].item<int64_t>()) +
                    " (labels are 0..9; " + kFixHint + ")");
  }
  auto images = records.slice(1, 1).reshape({n, 3, kImageSide, kImageSide}).clone();
  return {images, labels.clone()};
}

std::vector<std::string> read_class_names(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw UserError("missing CIFAR-10 file " + file.string(), kExitBadInput);
  // Ten short names (61 bytes in the official archive): 1 MiB is room for
  // any honest copy and refuses a wrong file of gigabytes unread.
  return parse_class_names(read_file(file, 1 << 20), file.string());
}

std::vector<std::string> parse_class_names(std::string_view text, const std::string& source) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    // As a checkpoint will hold it (JSON): a Latin-1 name must compare equal
    // when the checkpoint is loaded against this data again.
    if (!line.empty()) names.push_back(valid_utf8(line));
  }
  check_input(names.size() == static_cast<size_t>(kNumClasses),
              "corrupt CIFAR-10 file " + source + ": expected 10 class names, found " +
                  std::to_string(names.size()),
              kFixHint);
  return names;
}

Cifar10 read_cifar10(const fs::path& dir, bool with_training) {
  // Check every file exists before reading any, so the error is immediate.
  for (const auto& name : cifar10_files()) {
    if (!with_training && name.rfind("data_batch_", 0) == 0) continue;
    std::error_code ec;
    if (!fs::exists(dir / name, ec)) {
      throw UserError("missing CIFAR-10 file " + (dir / name).string() + " (hint: " + kFixHint + ")");
    }
  }
  Cifar10 data;
  data.class_names = read_class_names(dir / "batches.meta.txt");
  std::vector<torch::Tensor> images{torch::empty({0, 3, kImageSide, kImageSide}, torch::kUInt8)};
  std::vector<torch::Tensor> labels{torch::empty({0}, torch::kInt64)};
  for (int b = 1; b <= 5 && with_training; ++b) {
    auto part = read_cifar_batch(dir / ("data_batch_" + std::to_string(b) + ".bin"));
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  data.train = {torch::cat(images), torch::cat(labels)};
  data.test = read_cifar_batch(dir / "test_batch.bin");
  return data;
}

}  // namespace cifar
