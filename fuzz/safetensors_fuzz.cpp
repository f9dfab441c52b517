// safetensors weights (--pretrained-weights): header length, JSON header,
// dtypes, shapes and offsets against the body.
#include "fuzz_util.h"
#include "models/safetensors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cifar::fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cifar;
  fuzz::parse_or_refuse([&] {
    SafetensorsMetadata metadata;
    const TensorMap tensors = decode_safetensors(fuzz::as_bytes(data, size), "fuzz.safetensors", &metadata);
    // What was accepted must survive a write and a read unchanged, byte
    // for byte (NaN payloads included, so no torch::equal).
    SafetensorsMetadata metadata_again;
    const TensorMap again = decode_safetensors(encode_safetensors(tensors, metadata), "re-encoded", &metadata_again);
    fuzz::require(metadata_again == metadata, "metadata round-trips");
    fuzz::require(again.size() == tensors.size(), "tensor count round-trips");
    for (const auto& [name, t] : tensors) {
      const auto& u = again.at(name);
      fuzz::require(u.scalar_type() == t.scalar_type() && u.sizes() == t.sizes(), "dtype and shape round-trip");
      fuzz::require(t.is_contiguous() && u.is_contiguous(), "tensors own contiguous memory");
      fuzz::require(t.numel() == 0 || std::memcmp(t.data_ptr(), u.data_ptr(), t.numel() * t.element_size()) == 0,
                    "bytes round-trip");
    }
  });
  return 0;
}
