#include "data/image_io.h"

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
#include "common/printable.h"
#include "data/jpeg.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw UserError(source + ": " + why);
}
[[noreturn]] void fail(const fs::path& path, const std::string& why) { fail(path.string(), why); }

// stb_image also reads TGA, whose format has no signature: nearly any text
// file "is" a TGA to stbi_info. So the format is decided here, by magic bytes.
const char* format_of(std::string_view bytes) {
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
std::pair<int64_t, int64_t> claimed_size(std::string_view bytes, const std::string& format) {
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

// Walks a PNG's chunks as stb_image 2.27 will read them, up to IEND, to
// keep two of its faults (both found by fuzz/image_fuzz) from being
// reached:
//  - it grows its IDAT buffer to a chunk's declared length before reading
//    the chunk: a 136-byte file declaring 2 GB made it allocate 2 GB. A
//    chunk whose data runs past the end of the file is refused here (stb
//    would refuse the file too, after the allocation).
//  - a first IDAT of length 0 makes it memcpy(NULL, src, 0), undefined
//    behaviour. An empty IDAT holds no data, so such chunks are dropped:
//    same image, no UB.
struct PngScan {
  std::string fault;      // why the file is refused, or ""
  std::string rewritten;  // the bytes without empty IDATs, or "" if none
};

PngScan scan_png(std::string_view b) {
  auto be32 = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(b[i])) << 24 |
           static_cast<uint32_t>(static_cast<unsigned char>(b[i + 1])) << 16 |
           static_cast<uint32_t>(static_cast<unsigned char>(b[i + 2])) << 8 | static_cast<unsigned char>(b[i + 3]);
  };
  PngScan scan;
  std::string kept(b.substr(0, 8));
  bool dropped = false;
  size_t at = 8;
  while (at + 8 <= b.size()) {  // length and type
    const uint64_t length = be32(at);
    const std::string_view type = b.substr(at + 4, 4);
    if (length > b.size() - at - 8) {
      scan.fault = "corrupt or truncated PNG data (a chunk declares " + std::to_string(length) +
                   " bytes; the file ends " + std::to_string(b.size() - at - 8) + " bytes later)";
      return scan;
    }
    const size_t chunk = std::min<size_t>(12 + length, b.size() - at);  // the last CRC may be cut off
    if (length == 0 && type == "IDAT") {
      dropped = true;
    } else {
      kept.append(b.substr(at, chunk));
    }
    at += chunk;
    if (type == "IEND") break;
  }
  if (dropped) scan.rewritten = kept.append(b.substr(at));
  return scan;
}

// stb_image reads zeros past the end of a BMP, so a truncated one decodes
// with its missing rows black instead of failing. The pixel array's extent
// follows from the header -- it starts at bfOffBits, each row padded to 4
// bytes -- so it is checked here. Returns the fault, or "" when the pixels
// fit or the header is one this check does not size (RLE rows vary in
// length; stb refuses RLE itself).
std::string bmp_truncation_fault(std::string_view b, int64_t width, int64_t height) {
  auto byte = [&](size_t i) -> uint32_t { return i < b.size() ? static_cast<unsigned char>(b[i]) : 0; };
  auto le16 = [&](size_t i) { return byte(i) | byte(i + 1) << 8; };
  auto le32 = [&](size_t i) { return le16(i) | le16(i + 2) << 16; };
  if (b.size() < 30) return "";  // stbi_info has refused shorter headers
  const uint32_t offset = le32(10), header = le32(14);
  // BITMAPCOREHEADER (OS/2, 12 bytes) keeps the bit count at 24; the
  // later headers (40 bytes and up) at 28, the compression at 30.
  const uint32_t bits = header == 12 ? le16(24) : le16(28);
  const uint32_t compression = header == 12 ? 0 : le32(30);
  if (compression != 0 && compression != 3 && compression != 6) return "";  // not BI_RGB / BI_BITFIELDS
  if (bits == 0 || bits > 32) return "";
  const uint64_t row = (static_cast<uint64_t>(width) * bits + 31) / 32 * 4;
  const uint64_t needed = static_cast<uint64_t>(offset) + row * static_cast<uint64_t>(height);
  if (needed <= b.size()) return "";
  return "corrupt or truncated BMP data (its header puts " + std::to_string(row * height) + " bytes of pixels at byte " +
         std::to_string(offset) + "; the file ends at byte " + std::to_string(b.size()) + ")";
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
  // read_file refuses devices and FIFOs, and a file past the limit, before
  // reading a byte.
  return decode_image(read_file(path, kMaxImageFileBytes), path.string());
}

torch::Tensor decode_image(std::string_view bytes, const std::string& path) {
  if (bytes.empty()) fail(path, "empty file (0 bytes)");
  if (bytes.size() > static_cast<size_t>(kMaxImageFileBytes)) {
    fail(path, "file of " + std::to_string(bytes.size()) + " bytes is over the " +
                   std::to_string(kMaxImageFileBytes >> 20) + " MiB limit for images");
  }
  const char* format = format_of(bytes);
  if (!format) fail(path, "not a PNG, JPEG or BMP image");
  // Before stbi_info too: it reads the tables that precede the frame header.
  if (std::string(format) == "JPEG") {
    if (const std::string fault = jpeg_table_fault(bytes); !fault.empty()) fail(path, fault);
  }

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
  // stbi_info passes a BMP's height through as stored, and a negative one
  // means top-down rows (stbi_load flips it): its size is the magnitude.
  // Taken in 64 bits, as -INT_MIN does not fit an int.
  const int64_t width = w, height = std::string(format) == "BMP" ? std::abs(static_cast<int64_t>(h)) : h;
  if (width <= 0 || height <= 0) fail(path, "image has no pixels");
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels) {
    fail(path, std::string(format) + " header claims " + std::to_string(width) + "x" + std::to_string(height) +
                   " pixels: image too large (" + limit + ")");
  }
  if (std::string(format) == "JPEG") return decode_jpeg_pixels(bytes, path, width, height);
  if (std::string(format) == "BMP") {
    if (const std::string fault = bmp_truncation_fault(bytes, width, height); !fault.empty()) fail(path, fault);
  }
  PngScan png;
  if (std::string(format) == "PNG") {
    png = scan_png(bytes);
    if (!png.fault.empty()) fail(path, png.fault);
  }
  const std::string& rewritten = png.rewritten;
  const auto* pixel_data = rewritten.empty() ? data : reinterpret_cast<const stbi_uc*>(rewritten.data());
  const int pixel_len = rewritten.empty() ? len : static_cast<int>(rewritten.size());
  // Forcing 3 channels makes stb convert gray, gray+alpha and RGBA to RGB.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(pixel_data, pixel_len, &w, &h, &channels, 3), stbi_image_free);
  if (!pixels) {
    const std::string reason = ascii_reason(stbi_failure_reason() ? stbi_failure_reason() : "");
    fail(path, std::string("corrupt or truncated ") + format + " data" +
                   (reason.empty() ? "" : " (" + reason + ")"));
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

torch::Tensor square_image(const torch::Tensor& image_u8, int64_t side, const std::string& mode) {
  check_tensor(image_u8, "square_image");
  const int64_t h = image_u8.size(1), w = image_u8.size(2);
  if (mode == "squash" || h == w) return resize_image(image_u8, side, side);
  if (mode == "crop") {
    const int64_t s = std::min(h, w);
    const auto square = image_u8.narrow(1, (h - s) / 2, s).narrow(2, (w - s) / 2, s).contiguous();
    return resize_image(square, side, side);
  }
  if (mode != "pad") throw std::invalid_argument("square_image: unknown mode " + mode);
  // The longer side becomes `side`; the shorter keeps the ratio, at least 1.
  const int64_t rh = h >= w ? side : std::max<int64_t>(1, (h * side + w / 2) / w);
  const int64_t rw = w >= h ? side : std::max<int64_t>(1, (w * side + h / 2) / h);
  auto out = torch::zeros({3, side, side}, torch::kUInt8);
  out.narrow(1, (side - rh) / 2, rh).narrow(2, (side - rw) / 2, rw).copy_(resize_image(image_u8, rh, rw));
  return out;
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
