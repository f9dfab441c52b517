#include "data/jpeg.h"

#include <jpeglib.h>
#include <jerror.h>  // the warning codes
#include <libexif/exif-data.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/printable.h"

namespace cifar {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw UserError(source + ": " + why);
}

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace cifar
