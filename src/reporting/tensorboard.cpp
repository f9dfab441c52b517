#include "reporting/tensorboard.h"

#include <fcntl.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cfloat>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <tuple>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

// A byte-at-a-time table CRC. Debian 12 packages no C or C++ CRC32C library
// (only python3-crc32c and Go/Rust sources), and event files are small
// enough (kilobytes per epoch) that hardware CRC would buy nothing.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t get_le(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// One process may open several writers in the same second (train and
// validation, or a resume in a test); the counter keeps their names apart.
std::atomic<int> g_file_counter{0};

void append_png_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = kCrc32cTable[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

void append_tfrecord(std::string& out, std::string_view data) {
  std::string header;
  put_le(header, data.size(), 8);
  out += header;
  put_le(out, masked_crc32c(header), 4);
  out.append(data.data(), data.size());
  put_le(out, masked_crc32c(data), 4);
}

const std::vector<double>& histogram_bucket_limits() {
  static const std::vector<double> limits = [] {
    std::vector<double> positive;
    for (double v = 1e-12; v < 1e20; v *= 1.1) positive.push_back(v);
    positive.push_back(DBL_MAX);
    std::vector<double> all;
    all.reserve(2 * positive.size() + 1);
    for (auto it = positive.rbegin(); it != positive.rend(); ++it) all.push_back(-*it);
    all.push_back(0.0);
    all.insert(all.end(), positive.begin(), positive.end());
    return all;
  }();
  return limits;
}

tensorboard::HistogramProto make_histogram(const torch::Tensor& values) {
  torch::NoGradGuard no_grad;
  tensorboard::HistogramProto histo;
  auto v = values.detach().to(torch::kCPU, torch::kDouble).flatten();
  v = v.masked_select(v.isnan().logical_not());
  if (v.numel() == 0) return histo;

  const auto& limits = histogram_bucket_limits();
  const auto n = static_cast<int64_t>(limits.size());
  static const torch::Tensor limits_t =
      torch::tensor(limits, torch::TensorOptions().dtype(torch::kDouble));
  // right=true gives limit[i-1] <= v < limit[i], TensorFlow's histogram.cc
  // (std::upper_bound): a value equal to a limit counts in the next bucket,
  // so 0.0 goes to the bucket ending at 1e-12. DBL_MAX and +inf land past
  // the end and join the last bucket.
  auto index = torch::bucketize(v, limits_t, /*out_int32=*/false, /*right=*/true).clamp_max(n - 1);
  auto counts_t = torch::bincount(index, {}, n).to(torch::kDouble).contiguous();
  const double* counts = counts_t.data_ptr<double>();

  histo.set_min(v.min().item<double>());
  histo.set_max(v.max().item<double>());
  histo.set_num(static_cast<double>(v.numel()));
  histo.set_sum(v.sum().item<double>());
  histo.set_sum_squares(v.square().sum().item<double>());
  for (int64_t i = 0; i < n;) {
    double limit = limits[i];
    double count = counts[i];
    ++i;
    if (count <= 0) {
      while (i < n && counts[i] <= 0) limit = limits[i++];
    }
    histo.add_bucket_limit(limit);
    histo.add_bucket(count);
  }
  return histo;
}

EncodedImage encode_png(const torch::Tensor& image) {
  check_input(image.defined() && image.dim() == 3 && image.scalar_type() == torch::kUInt8,
              "an image for TensorBoard must be a uint8 tensor of 3 dimensions (CHW or HWC)");
  auto channels_ok = [](int64_t c) { return c >= 1 && c <= 4; };
  torch::Tensor hwc;
  if (channels_ok(image.size(2))) {
    hwc = image;
  } else if (channels_ok(image.size(0))) {
    hwc = image.permute({1, 2, 0});
  } else {
    throw UserError("an image for TensorBoard needs 1 to 4 channels first or last; got shape " +
                    c10::str(image.sizes()));
  }
  hwc = hwc.to(torch::kCPU).contiguous();
  EncodedImage out;
  out.height = static_cast<int>(hwc.size(0));
  out.width = static_cast<int>(hwc.size(1));
  out.channels = static_cast<int>(hwc.size(2));
  check_input(out.height > 0 && out.width > 0, "an image for TensorBoard must not be empty");
  if (stbi_write_png_to_func(&append_png_bytes, &out.png, out.width, out.height, out.channels,
                             hwc.data_ptr<uint8_t>(), out.width * out.channels) == 0) {
    throw UserError("PNG encoding failed for a " + std::to_string(out.width) + "x" +
                        std::to_string(out.height) + " image",
                    kExitRuntime);
  }
  return out;
}

torch::Tensor tile_images(const torch::Tensor& images, int64_t columns, int64_t max_images,
                          int64_t padding) {
  check_input(images.dim() == 4, "tile_images expects [B,C,H,W], got " + c10::str(images.sizes()));
  check_input(columns > 0 && max_images > 0 && padding >= 0,
              "tile_images needs columns > 0, max_images > 0 and padding >= 0");
  const int64_t count = std::min(images.size(0), max_images);
  check_input(count > 0, "tile_images got no images");
  const int64_t c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t cols = std::min(columns, count);
  const int64_t rows = (count + cols - 1) / cols;
  auto grid = torch::zeros({c, rows * (h + padding) + padding, cols * (w + padding) + padding},
                           images.options().device(torch::kCPU));
  auto src = images.narrow(0, 0, count).to(torch::kCPU);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t y = padding + (i / cols) * (h + padding);
    const int64_t x = padding + (i % cols) * (w + padding);
    grid.narrow(1, y, h).narrow(2, x, w).copy_(src[i]);
  }
  return grid;
}

TensorBoardWriter::TensorBoardWriter(const fs::path& dir) {
  ensure_dir(dir);
  const auto seconds = static_cast<long long>(now_seconds());
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%010lld", seconds);
  path_ = dir / ("events.out.tfevents." + std::string(stamp) + "." + host_name() + "." +
                 std::to_string(::getpid()) + "." + std::to_string(g_file_counter++));
  // O_EXCL: never append to, or clobber, another writer's file.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw UserError("cannot create TensorBoard event file " + path_.string() + ": " +
                        std::strerror(errno),
                    kExitRuntime);
  }
  tensorboard::Event first;
  first.set_wall_time(now_seconds());
  first.set_file_version("brain.Event:2");
  add_event(std::move(first));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  try {
    flush();
  } catch (...) {
    // A destructor must not throw; flush() at epoch ends reports errors.
  }
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::add_event(tensorboard::Event event) {
  if (event.wall_time() == 0) event.set_wall_time(now_seconds());
  append_tfrecord(pending_, event.SerializeAsString());
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  tensorboard::Event event;
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  add_event(std::move(event));
}

void TensorBoardWriter::add_histogram(const std::string& tag, const torch::Tensor& values,
                                      int64_t step) {
  auto histo = make_histogram(values);
  if (histo.num() == 0) return;
  tensorboard::Event event;
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  *v->mutable_histo() = std::move(histo);
  add_event(std::move(event));
}

void TensorBoardWriter::add_image(const std::string& tag, const torch::Tensor& image,
                                  int64_t step) {
  auto png = encode_png(image);
  tensorboard::Event event;
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  auto* img = v->mutable_image();
  img->set_height(png.height);
  img->set_width(png.width);
  img->set_colorspace(png.channels);
  img->set_encoded_image_string(std::move(png.png));
  add_event(std::move(event));
}

void TensorBoardWriter::add_session_start(int64_t step) {
  tensorboard::Event event;
  event.set_step(step);
  event.mutable_session_log()->set_status(tensorboard::SessionLog::START);
  add_event(std::move(event));
}

void TensorBoardWriter::flush() {
  size_t done = 0;
  while (done < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      // Keep what was not written, so that a retry does not tear a record.
      pending_.erase(0, done);
      throw UserError("cannot write TensorBoard event file " + path_.string() + ": " + why,
                      kExitRuntime);
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
}

std::vector<tensorboard::Event> parse_tensorboard_events(std::string_view bytes,
                                                         const std::string& source) {
  std::vector<tensorboard::Event> events;
  size_t at = 0;
  for (size_t index = 0; at < bytes.size(); ++index) {
    const std::string where =
        source + ": record " + std::to_string(index) + " at byte " + std::to_string(at);
    const size_t left = bytes.size() - at;
    if (left < 12) {
      throw UserError(where + " is truncated (" + std::to_string(left) +
                      " bytes, a record header needs 12); the file was cut short");
    }
    const uint64_t length = get_le(bytes, at, 8);
    const uint32_t stored_length_crc = static_cast<uint32_t>(get_le(bytes, at + 8, 4));
    const uint32_t length_crc = masked_crc32c(bytes.substr(at, 8));
    if (stored_length_crc != length_crc) {
      throw UserError(where + ": length CRC mismatch (stored " + hex32(stored_length_crc) +
                      ", computed " + hex32(length_crc) + "); the file is corrupt");
    }
    if (length > left - 12 || left - 12 - length < 4) {
      throw UserError(where + " is truncated (length " + std::to_string(length) + ", " +
                      std::to_string(left - 12) + " bytes follow the header)");
    }
    const std::string_view data = bytes.substr(at + 12, length);
    const uint32_t stored_data_crc = static_cast<uint32_t>(get_le(bytes, at + 12 + length, 4));
    const uint32_t data_crc = masked_crc32c(data);
    if (stored_data_crc != data_crc) {
      throw UserError(where + ": data CRC mismatch (stored " + hex32(stored_data_crc) +
                      ", computed " + hex32(data_crc) + "); the file is corrupt");
    }
    tensorboard::Event event;
    if (!event.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      throw UserError(where + ": the data is not an Event protobuf");
    }
    events.push_back(std::move(event));
    at += 12 + length + 4;
  }
  return events;
}

std::vector<tensorboard::Event> read_tensorboard_events(const fs::path& path) {
  return parse_tensorboard_events(read_file(path), path.string());
}

std::vector<fs::path> list_event_files(const fs::path& dir) {
  // events.out.tfevents.<time>.<host>.<pid>.<counter>: the host may hold
  // dots, so time is the field after "tfevents" and counter the last one.
  std::vector<std::tuple<long long, long long, std::string, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "events.out.tfevents.";
    if (!entry.is_regular_file() || name.rfind(prefix, 0) != 0) continue;
    const long long time = std::strtoll(name.c_str() + prefix.size(), nullptr, 10);
    const long long counter = std::strtoll(name.c_str() + name.rfind('.') + 1, nullptr, 10);
    found.emplace_back(time, counter, name, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> paths;
  for (auto& f : found) paths.push_back(std::get<3>(f));
  return paths;
}

}  // namespace cifar
