// CIFAR-10 binary format: each record is 1 label byte then 3,072 pixel bytes
// (1,024 red, 1,024 green, 1,024 blue, row-major 32x32), so a batch file is
// exactly N * 3,073 bytes. Everything is held in memory as uint8 (~180 MB).
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cifar {

constexpr int64_t kImageSide = 32;
constexpr int64_t kRecordBytes = 1 + 3 * kImageSide * kImageSide;  // 3,073
constexpr int64_t kNumClasses = 10;

// Images uint8 [N, 3, 32, 32] and labels int64 [N], on one device.
struct ImageSet {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  ImageSet slice(int64_t begin, int64_t end) const;
  ImageSet select(const torch::Tensor& indices) const;
  ImageSet to(const torch::Device& device) const;
};

struct Cifar10 {
  ImageSet train;  // data_batch_1..5: 50,000 records
  ImageSet test;   // test_batch: 10,000 records
  std::vector<std::string> class_names;
};

// Reads and validates one batch file (size, labels 0..9). Throws UserError
// naming the file and what is wrong with it.
ImageSet read_cifar_batch(const std::filesystem::path& file);
// The same checks on a batch file's bytes; `source` names it in errors.
ImageSet parse_cifar_batch(std::string_view bytes, const std::string& source);

// Reads batches.meta.txt: exactly ten non-empty class names.
std::vector<std::string> read_class_names(const std::filesystem::path& file);
std::vector<std::string> parse_class_names(std::string_view text, const std::string& source);

// Reads and validates the whole cifar-10-batches-bin/ folder; without
// `with_training` (an evaluation) only the test batch and the class names,
// and `train` is empty.
Cifar10 read_cifar10(const std::filesystem::path& batches_dir, bool with_training = true);

// The files a complete cifar-10-batches-bin/ holds.
std::vector<std::string> cifar10_files();

}  // namespace cifar
