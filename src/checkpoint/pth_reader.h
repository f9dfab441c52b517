// PyTorch .pth weight files: torch.save() of a state dict, the form in which
// torchvision publishes its ImageNet weights. A zip of <name>/data.pkl (a
// pickle, protocol 2), <name>/data/<key> (each tensor storage's raw
// little-endian bytes) and <name>/version.
//
// LibTorch 1.13's torch::pickle_load cannot read them: it stops with
// "Expected GenericDict but got None" on the collections.OrderedDict every
// state dict is. And a general unpickler calls whatever the file names
// (os.system included). So the pickle is run here on a small machine that
// knows only what a state dict needs: the opcodes torch.save writes for one
// (and their protocol 4 forms), and the globals collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the
// storage classes (torch.FloatStorage, ...), with storages given by
// persistent id ('storage', class, key, location, size). Any other opcode
// or global is refused by name, every storage must match its record's size
// exactly, and every tensor must lie within its storage.
#pragma once
#include <string>
#include <string_view>

#include "models/safetensors.h"

namespace cifar {

// The state dict in `bytes` (name -> tensor on the CPU, in its stored
// dtype). Refuses with a UserError naming `source`: a file that is no zip
// (the pre-1.6 torch.save format included), a record whose CRC fails, a
// LibTorch archive (a cifar10 checkpoint, a TorchScript module), a pickle
// with an opcode or global a state dict never holds, a storage larger or
// smaller than its record, a tensor reaching past its storage, and a top
// level that is not a mapping of names to tensors.
TensorMap decode_pth(std::string_view bytes, const std::string& source);
TensorMap read_pth(const std::string& path);

// Whether `bytes` start as a zip file does ("PK\3\4"), as every .pth file
// since PyTorch 1.6 and every LibTorch archive do.
bool is_zip(std::string_view bytes);

}  // namespace cifar
