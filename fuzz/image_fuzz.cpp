// Images given to `cifar10 predict`: PNG, JPEG and BMP from memory, with the
// size limits checked from the header, then resized to 32x32 as predict does.
// stb_image is compiled into this target (stb_image_impl.cpp), instrumented,
// in place of Debian's libstb.so, so the decoder itself is fuzzed with
// coverage and ASan, not just our checks around it.
#include "data/image_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  fuzz::parse_or_refuse([&] {
    const torch::Tensor image = decode_image(fuzz::as_bytes(data, size), "fuzz.img");
    fuzz::require(image.dim() == 3 && image.size(0) == 3 && image.scalar_type() == torch::kUInt8, "uint8 [3,H,W]");
    fuzz::require(image.size(1) > 0 && image.size(2) > 0 && image.size(1) <= kMaxImageSide &&
                      image.size(2) <= kMaxImageSide && image.size(1) * image.size(2) <= kMaxImagePixels,
                  "within the size limits");
    const torch::Tensor small = resize_image(image, 32, 32);
    fuzz::require(small.sizes() == torch::IntArrayRef({3, 32, 32}), "resized to 3x32x32");
  });
  return 0;
}
