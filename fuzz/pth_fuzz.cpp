// .pth weight files (--pretrained-weights FILE, and the ImageNet download):
// the zip and CRC check (libarchive), the opcode walk, and the restricted
// unpickler that builds the state dict, all our code but libarchive.
#include "fuzz_util.h"
#include "checkpoint/pth_reader.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  fuzz::parse_or_refuse([&] {
    const TensorMap tensors = decode_pth(fuzz::as_bytes(data, size), "fuzz.pth");
    // Every tensor it returns must lie within memory it owns: reading each
    // element is what loading it into a model does.
    for (const auto& [name, t] : tensors) {
      if (t.numel() > 0 && t.is_floating_point()) t.to(torch::kFloat64).sum().item<double>();
    }
  });
  return 0;
}
