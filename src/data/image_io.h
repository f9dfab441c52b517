// Image files in and out, for `predict` and for the plots: PNG, JPEG and
// BMP decoded with stb_image, written as PNG with stb_image_write. Images
// are uint8 [3,H,W] (RGB, channels first), as the CIFAR-10 tensors are.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace cifar {

// Refused before decoding: a hostile header can claim 100000x100000 pixels
// in a few bytes, and stb would try to allocate 30 GB for it.
constexpr int64_t kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = 64LL * 1000 * 1000;  // 64 MP, ~192 MB as RGB
constexpr int64_t kMaxImageFileBytes = 256LL * 1024 * 1024;

// Decodes a PNG, JPEG or BMP file to uint8 [3,H,W] at its own size.
// Grayscale, grayscale + alpha and RGBA become RGB (alpha is dropped, not
// composited); 16-bit PNGs are reduced to 8 bits; CMYK and YCCK JPEGs are
// converted to RGB without a colour profile (inverted values when an Adobe
// marker says so, as Photoshop writes them). A JPEG's EXIF orientation
// is applied: the image comes out upright, as viewers show it. Throws
// UserError naming the
// file if it is missing, empty, not one of those formats, corrupt or
// truncated (a JPEG that libjpeg decoded only by making up data: ended
// early or corrupt entropy data; a BMP whose pixel array runs past the end
// of the file), or larger than the limits above (checked from the header,
// before decoding).
torch::Tensor decode_image_file(const std::filesystem::path& path);
// The same decoding and limits on a file's bytes; `source` names it in errors.
torch::Tensor decode_image(std::string_view bytes, const std::string& source);

// uint8 [3,H,W] -> uint8 [3,height,width] (the aspect ratio is not kept).
// stb_image_resize with a box filter when shrinking -- area averaging, each
// output pixel the coverage-weighted mean of the input pixels under it
// (exact for integer ratios, 1-pixel trapezoid edges otherwise), so a large
// photo does not alias on its way down to 32 -- and a triangle
// (bilinear) filter when enlarging, chosen per axis. Values are treated as
// linear, as torch's interpolate would. Same size returns a copy unchanged.
torch::Tensor resize_image(const torch::Tensor& image_u8, int64_t height, int64_t width);

// uint8 [3,H,W] -> uint8 [3,side,side], keeping the aspect ratio unless
// asked not to: "crop" takes the centre square (the photo's subject, as
// torchvision's Resize + CenterCrop), "pad" fits the whole image inside
// black borders, "squash" stretches it (what a 32x32 model sees otherwise).
torch::Tensor square_image(const torch::Tensor& image_u8, int64_t side, const std::string& mode);

// Writes uint8 [3,H,W] (any device) as a PNG, encoded in memory and then
// written atomically.
void write_png(const std::filesystem::path& path, const torch::Tensor& image_u8);

}  // namespace cifar
