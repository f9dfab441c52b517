#include "evaluation/image_io.h"

// Debian's libstb.so carries the implementations, so no *_IMPLEMENTATION here.
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& why) {
  throw UserError(path.string() + ": " + why);
}

// stb_image also reads TGA, whose format has no signature: nearly any text
// file "is" a TGA to stbi_info. So the format is decided here, by magic bytes.
const char* format_of(const std::string& bytes) {
  auto starts = [&](const char* magic, size_t n) {
    return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
  };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "PNG";
  if (starts("\xFF\xD8\xFF", 3)) return "JPEG";
  if (starts("BM", 2)) return "BMP";
  return nullptr;
}

// Width and height as PNG (IHDR) and BMP (BITMAPINFOHEADER) headers state
// them, or {0, 0}; only used to explain a header stbi_info refused.
std::pair<int64_t, int64_t> claimed_size(const std::string& bytes, const std::string& format) {
  auto byte = [&](size_t i) { return static_cast<int64_t>(static_cast<unsigned char>(bytes[i])); };
  if (format == "PNG" && bytes.size() >= 24 && bytes.compare(12, 4, "IHDR") == 0) {
    auto be32 = [&](size_t i) { return byte(i) << 24 | byte(i + 1) << 16 | byte(i + 2) << 8 | byte(i + 3); };
    return {be32(16), be32(20)};
  }
  if (format == "BMP" && bytes.size() >= 26) {
    auto le32 = [&](size_t i) {
      return static_cast<int64_t>(static_cast<int32_t>(
          static_cast<uint32_t>(byte(i) | byte(i + 1) << 8 | byte(i + 2) << 16 | byte(i + 3) << 24)));
    };
    return {std::abs(le32(18)), std::abs(le32(22))};  // negative height: top-down rows
  }
  return {0, 0};
}

void check_tensor(const torch::Tensor& image, const char* who) {
  if (image.dim() != 3 || image.size(0) != 3 || image.scalar_type() != torch::kUInt8) {
    throw std::invalid_argument(std::string(who) + ": expected uint8 [3,H,W], got " +
                                std::string(image.toString()) + " " + c10::str(image.sizes()));
  }
}

}  // namespace

torch::Tensor decode_image_file(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) fail(path, "file not found");
  if (fs::is_directory(status)) fail(path, "is a folder, not an image file");
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read: " + ec.message());
  if (size == 0) fail(path, "empty file (0 bytes)");
  if (size > static_cast<uintmax_t>(kMaxImageFileBytes)) {
    fail(path, "file of " + std::to_string(size) + " bytes is over the " +
                   std::to_string(kMaxImageFileBytes >> 20) + " MiB limit for images");
  }
  const std::string bytes = read_file(path);
  const char* format = format_of(bytes);
  if (!format) fail(path, "not a PNG, JPEG or BMP image");

  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());  // < 256 MiB, checked above
  int w = 0, h = 0, channels = 0;
  const std::string limit = "limit: " + std::to_string(kMaxImageSide) + " pixels per side, " +
                            std::to_string(kMaxImagePixels / 1000000) + " MP";
  if (!stbi_info_from_memory(data, len, &w, &h, &channels)) {
    // stb refuses some huge headers itself (a PNG over 2^30 decoded bytes),
    // but its failure reason is then overwritten by the formats it tries
    // next, so the claimed size is read here to say what is wrong.
    const auto claimed = claimed_size(bytes, format);
    if (claimed.first > kMaxImageSide || claimed.second > kMaxImageSide) {
      fail(path, std::string(format) + " header claims " + std::to_string(claimed.first) + "x" +
                     std::to_string(claimed.second) + " pixels: image too large (" + limit + ")");
    }
    fail(path, std::string("corrupt or unsupported ") + format + " header");
  }
  if (w <= 0 || h <= 0) fail(path, "image has no pixels");
  if (w > kMaxImageSide || h > kMaxImageSide || static_cast<int64_t>(w) * h > kMaxImagePixels) {
    fail(path, std::string(format) + " header claims " + std::to_string(w) + "x" + std::to_string(h) +
                   " pixels: image too large (" + limit + ")");
  }
  // Forcing 3 channels makes stb convert gray, gray+alpha and RGBA to RGB.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, len, &w, &h, &channels, 3), stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    fail(path, std::string("corrupt or truncated ") + format + " data" +
                   (reason && *reason ? std::string(" (") + reason + ")" : ""));
  }
  return torch::from_blob(pixels.get(), {h, w, 3}, torch::kUInt8).permute({2, 0, 1}).clone(
      at::MemoryFormat::Contiguous);
}

torch::Tensor resize_image(const torch::Tensor& image_u8, int64_t height, int64_t width) {
  check_tensor(image_u8, "resize_image");
  if (height <= 0 || width <= 0 || height > kMaxImageSide || width > kMaxImageSide) {
    throw std::invalid_argument("resize_image: bad target size " + std::to_string(height) + "x" +
                                std::to_string(width));
  }
  const int64_t in_h = image_u8.size(1), in_w = image_u8.size(2);
  if (in_h == height && in_w == width) return image_u8.to(torch::kCPU).clone();
  auto hwc = image_u8.to(torch::kCPU).permute({1, 2, 0}).contiguous();
  auto out = torch::empty({height, width, 3}, torch::kUInt8);
  auto filter = [](int64_t in, int64_t out_side) {
    return out_side < in ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE;
  };
  const int ok = stbir_resize(hwc.data_ptr<uint8_t>(), static_cast<int>(in_w), static_cast<int>(in_h), 0,
                              out.data_ptr<uint8_t>(), static_cast<int>(width), static_cast<int>(height), 0,
                              STBIR_TYPE_UINT8, 3, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                              STBIR_EDGE_CLAMP, filter(in_w, width), filter(in_h, height),
                              STBIR_COLORSPACE_LINEAR, nullptr);
  if (!ok) throw std::runtime_error("stb_image_resize failed (out of memory?)");
  return out.permute({2, 0, 1}).contiguous();
}

void write_png(const fs::path& path, const torch::Tensor& image_u8) {
  check_tensor(image_u8, "write_png");
  auto hwc = image_u8.to(torch::kCPU).permute({1, 2, 0}).contiguous();
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1));
  std::string encoded;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &encoded, w, h, 3, hwc.data_ptr<uint8_t>(), w * 3)) {
    throw UserError("cannot encode " + path.string() + " as PNG", kExitRuntime);
  }
  write_file_atomic(path, encoded);
}

}  // namespace cifar
