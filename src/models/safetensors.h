// safetensors files (the Hugging Face format torchvision weights are
// exported to): an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
//    ..., "__metadata__": {"key": "value", ...}}
// then the raw little-endian tensor bytes. Offsets count from the end of the
// header and must tile the body exactly: no gaps, no overlaps, the last end
// equal to the body size.
// Dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <string_view>

namespace cifar {

using TensorMap = std::map<std::string, torch::Tensor>;
using SafetensorsMetadata = std::map<std::string, std::string>;

// The file's bytes, laid out as Hugging Face's writer lays them out
// (tensors sorted by dtype alignment, widest first, then by name; each at an
// offset aligned to its dtype; the header padded with spaces to 8 bytes).
// Tensors may live on any device and be non-contiguous.
std::string encode_safetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata = {});

// Parses and validates `bytes` (header length, JSON, dtypes, shapes against
// byte lengths, offsets tiling the body); each fault is a UserError naming
// `source` and the tensor. Tensors come back on the CPU in their stored
// dtype, owning their memory.
TensorMap decode_safetensors(std::string_view bytes, const std::string& source,
                             SafetensorsMetadata* metadata = nullptr);

// Writes atomically (temp file, fsync, rename).
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const SafetensorsMetadata& metadata = {});
TensorMap read_safetensors(const std::string& path, SafetensorsMetadata* metadata = nullptr);

}  // namespace cifar
