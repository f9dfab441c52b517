// JPEG files for image_io.cpp's decode_image: the Huffman table check run
// before stb_image reads any JPEG header, and the pixels decoded with
// libjpeg-turbo (CMYK and YCCK converted to RGB, the EXIF orientation
// applied), refusing data that libjpeg made up for a corrupt or cut file.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace cifar {

// Why stb_image 2.27 must not read the JPEG `bytes` (a Huffman table of
// more than 256 codes, which overflows its tables), or "".
std::string jpeg_table_fault(std::string_view bytes);

// The JPEG `bytes`, whose header declared `width` x `height`, as uint8
// [3,H,W] upright; throws UserError "<path>: ..." on a corrupt, truncated
// or unsupported file.
torch::Tensor decode_jpeg_pixels(std::string_view bytes, const std::string& path, int64_t width, int64_t height);

}  // namespace cifar
