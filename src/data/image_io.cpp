#include "data/image_io.h"

// Debian's libstb.so carries the implementations, so no *_IMPLEMENTATION here.
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <jpeglib.h>
#include <jerror.h>  // the warning codes
#include <libexif/exif-data.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw UserError(source + ": " + why);
}
[[noreturn]] void fail(const fs::path& path, const std::string& why) { fail(path.string(), why); }

// A decoder's failure reason with every byte outside printable ASCII made
// '?': stb quotes a bad PNG chunk's four type bytes as found in the file,
// so a line break or a terminal escape from a hostile file would reach the
// user's screen (found by fuzz/image_fuzz). The decoders' own reasons are
// plain ASCII, so nothing of them is lost.
std::string ascii_reason(std::string reason) {
  for (char& c : reason) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  return reason;
}

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

// stb_image 2.27 (Debian 12's libstb) trusts the code counts of a JPEG
// Huffman table (DHT): counts summing past 256 overflow its 257-entry
// size list and 256-entry value list on the heap (found by
// fuzz/image_fuzz; later stb releases check this themselves). So every DHT
// segment is checked here first, walking the markers as stb does,
// including those after a scan (progressive files define tables between
// scans). Returns the fault, or "" when the tables are sound or the walk
// cannot go on (a truncated or malformed stream stb will refuse by itself).
std::string jpeg_table_fault(std::string_view b) {
  // Past the end stb reads zeros, and so does this walk.
  auto byte = [&](size_t i) -> size_t { return i < b.size() ? static_cast<unsigned char>(b[i]) : 0; };
  size_t at = 2;  // after SOI
  while (at + 1 < b.size()) {
    // stb skips junk between segments until the next 0xFF; so must this
    // walk, or a table behind junk goes unchecked (the fuzzer's 2nd case).
    if (byte(at) != 0xFF) {
      ++at;
      continue;
    }
    while (at + 1 < b.size() && byte(at + 1) == 0xFF) ++at;  // fill bytes
    if (at + 1 >= b.size()) return "";
    const size_t marker = byte(at + 1);
    at += 2;
    if (marker == 0xD9) return "";                                       // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    const size_t length = byte(at) << 8 | byte(at + 1);
    if (length < 2) return "";
    if (marker == 0xC4) {
      // As stb does: another table is read while any of the declared
      // segment is left, even past its end or the file's.
      for (size_t p = at + 2; p < at + length && p < b.size();) {
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(p + i);
        if (codes > 256) {
          return "corrupt JPEG data (a Huffman table declares " + std::to_string(codes) + " codes; at most 256 exist)";
        }
        p += 17 + codes;
      }
    }
    at += length;
    if (marker == 0xDA) {
      // Entropy-coded data up to the next marker that is not a stuffed
      // 0xFF00 or a restart.
      while (at + 1 < b.size() &&
             !(byte(at) == 0xFF && byte(at + 1) != 0x00 && byte(at + 1) != 0xFF &&
               !(byte(at + 1) >= 0xD0 && byte(at + 1) <= 0xD7))) {
        ++at;
      }
    }
  }
  return "";
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

// JPEG pixels come from libjpeg-turbo, not stb: stb_image 2.27's bit
// reader shifts by more than 31 bits on a corrupt entropy-coded segment
// (undefined behaviour, fuzz finding F15), and libjpeg-turbo is the
// decoder that is fuzzed continuously upstream. libjpeg reports fatal
// errors through longjmp, so every object of this frame that must survive
// one is constructed before setjmp, and nothing in between has a
// destructor to skip.
struct JpegErrors {
  jpeg_error_mgr manager;  // first: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  char warning[JMSG_LENGTH_MAX];  // the first warning, for the error line
  bool data_missing = false;      // a warning that means pixels were made up
  bool input_ended = false;       // JWRN_JPEG_EOF: the input ended before its end marker
  int scans = 0;
};

// CMYK (or YCCK, which libjpeg turns into CMYK) pixels to RGB by the naive
// formula the other viewers use (ImageMagick without a profile, browsers):
// R = (1-C)(1-K). Photoshop, and most software after it, store CMYK JPEGs
// with every value inverted (255 = no ink) and mark them with an Adobe
// APP14 segment, so with that marker the stored value is already 1-C.
void cmyk_row_to_rgb(const uint8_t* cmyk, uint8_t* rgb, size_t width, bool inverted) {
  for (size_t x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    const int k = inverted ? cmyk[3] : 255 - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const int ink = inverted ? cmyk[c] : 255 - cmyk[c];
      rgb[c] = static_cast<uint8_t>((ink * k + 127) / 255);
    }
  }
}

// The EXIF orientation (1-8; 1 = as stored) of a JPEG whose APP1 markers
// libjpeg saved. Phone cameras store pixels as the sensor read them and
// say in this tag how to turn them; ignoring it classifies a sideways cat.
// A missing, malformed or out-of-range tag counts as 1.
int exif_orientation(const jpeg_decompress_struct& info) {
  for (jpeg_saved_marker_ptr m = info.marker_list; m != nullptr; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    std::unique_ptr<ExifData, void (*)(ExifData*)> exif(exif_data_new_from_data(m->data, m->data_length),
                                                        exif_data_unref);
    if (!exif) return 1;
    const ExifEntry* entry = exif_content_get_entry(exif->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (entry == nullptr || entry->format != EXIF_FORMAT_SHORT || entry->components != 1 || entry->size < 2) return 1;
    const int value = exif_get_short(entry->data, exif_data_get_byte_order(exif.get()));
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

// uint8 [3,H,W] turned upright as EXIF orientation `n` says (TIFF 6.0's
// eight cases: mirrorings and quarter turns).
torch::Tensor apply_orientation(const torch::Tensor& chw, int n) {
  switch (n) {
    case 2: return chw.flip({2});                       // mirrored left-right
    case 3: return chw.flip({1, 2});                    // upside down
    case 4: return chw.flip({1});                       // mirrored top-bottom
    case 5: return chw.transpose(1, 2).contiguous();    // mirrored along the main diagonal
    case 6: return chw.transpose(1, 2).flip({2});       // needs a quarter turn clockwise
    case 7: return chw.transpose(1, 2).flip({1, 2});    // mirrored along the other diagonal
    case 8: return chw.transpose(1, 2).flip({1});       // needs a quarter turn anticlockwise
    default: return chw;
  }
}

torch::Tensor decode_jpeg_pixels(std::string_view bytes, const std::string& path, int64_t width, int64_t height) {
  jpeg_decompress_struct info{};
  JpegErrors errors{};
  jpeg_progress_mgr progress{};
  torch::Tensor pixels = torch::empty({height, width, 3}, torch::kUInt8);
  // A CMYK file is decoded a row at a time into this (64 KB at most).
  std::vector<uint8_t> cmyk_row(static_cast<size_t>(width) * 4);
  info.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = [](j_common_ptr c) {
    auto* e = reinterpret_cast<JpegErrors*>(c->err);
    (*c->err->format_message)(c, e->message);
    std::longjmp(e->jump, 1);
  };
  // libjpeg "recovers" from a warning by making up data: a truncated file
  // decodes with its missing rows grey. The first is kept here and the
  // file refused after decoding.
  // Every warning passes here (libjpeg hands only the first one to
  // output_message). Only those that mean pixels were made up count: data
  // that ends early or is corrupt. The others (extraneous bytes between
  // markers, common in camera files; an odd JFIF version or ICC profile)
  // lose nothing. Trace messages (level 0 and up) are dropped.
  errors.manager.emit_message = [](j_common_ptr c, int level) {
    if (level >= 0) return;
    auto* e = reinterpret_cast<JpegErrors*>(c->err);
    ++c->err->num_warnings;
    switch (c->err->msg_code) {
      case JWRN_JPEG_EOF:
        e->input_ended = true;
        if (e->warning[0] == '\0') (*c->err->format_message)(c, e->warning);
        break;
      case JWRN_HIT_MARKER: case JWRN_MUST_RESYNC: case JWRN_NOT_SEQUENTIAL:
      case JWRN_HUFF_BAD_CODE: case JWRN_ARITH_BAD_CODE:
        e->data_missing = true;
        if (e->warning[0] == '\0') (*c->err->format_message)(c, e->warning);
        break;
      default:
        break;
    }
  };
  // A progressive JPEG of a few hundred bytes can hold thousands of scans,
  // each a full pass over the image (libjpeg-turbo's own advice: cap them).
  progress.progress_monitor = [](j_common_ptr c) {
    auto* d = reinterpret_cast<j_decompress_ptr>(c);
    if (d->input_scan_number > 500) {
      auto* e = reinterpret_cast<JpegErrors*>(c->err);
      std::snprintf(e->message, sizeof(e->message), "more than 500 progressive scans");
      std::longjmp(e->jump, 1);
    }
  };
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    fail(path, "corrupt or truncated JPEG data (" + ascii_reason(errors.message) + ")");
  }
  jpeg_create_decompress(&info);
  info.progress = &progress;
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);  // EXIF, for the orientation
  jpeg_read_header(&info, TRUE);
  // Read now: the saved markers live until jpeg_finish_decompress.
  const int orientation = exif_orientation(info);
  // A sequential JPEG whose first scan holds every component has one scan:
  // if it ends early, the Huffman decoder runs out of bits for the missing
  // rows and warns (JWRN_HIT_MARKER), so an end of input with no such
  // warning is a file that lacks only its end marker (FF D9; some cameras
  // and uploads), every pixel there. A progressive or multi-scan file cut
  // at a scan boundary reads as complete with scans missing: its end of
  // input is refused.
  const bool one_scan = !info.progressive_mode && info.comps_in_scan == info.num_components;
  // libjpeg converts gray and YCbCr to RGB itself, but not CMYK or YCCK
  // (print-ready files): those come out as CMYK and are converted below.
  const bool cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
  info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  if (info.image_width != width || info.image_height != height) {
    jpeg_destroy_decompress(&info);
    fail(path, "corrupt JPEG data (frame headers disagree on the size)");
  }
  jpeg_start_decompress(&info);
  if (info.output_components != (cmyk ? 4 : 3)) {
    jpeg_destroy_decompress(&info);
    fail(path, "unsupported JPEG colour space (hint: convert it to an RGB JPEG or a PNG)");
  }
  auto* out = pixels.data_ptr<uint8_t>();
  while (info.output_scanline < info.output_height) {
    uint8_t* rgb = out + static_cast<size_t>(info.output_scanline) * width * 3;
    JSAMPROW row = cmyk ? cmyk_row.data() : rgb;
    jpeg_read_scanlines(&info, &row, 1);
    if (cmyk) cmyk_row_to_rgb(row, rgb, static_cast<size_t>(width), info.saw_Adobe_marker);
  }
  jpeg_finish_decompress(&info);
  const bool warned = errors.data_missing || (errors.input_ended && !one_scan);
  jpeg_destroy_decompress(&info);
  if (warned) fail(path, "corrupt or truncated JPEG data (" + ascii_reason(errors.warning) + ")");
  return apply_orientation(pixels.permute({2, 0, 1}), orientation).contiguous();
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
