// Scans of a pickle's bytes made before anything unpickles them: the opcode
// walk every pickle record of a LibTorch archive or a .pth file passes, the
// check of the tensor storages a LibTorch archive's pickle declares against
// their records, the storage classes a pickle may name, and the opcodes'
// names for errors.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cifar {

// The opcode walk check_archive runs on every pickle record: each opcode
// one of protocols 0-5, each length within the bytes left, each memo index
// within the record's size, and a STOP. Returns the fault, or "".
std::string pickle_fault(std::string_view pickle);

// The tensor type a pickled storage class names ("torch.FloatStorage" ->
// Float), or nullopt for any other name.
std::optional<torch::ScalarType> storage_scalar_type(const std::string& global);

// Runs `p` (a LibTorch archive's data.pkl or constants.pkl that passed
// pickle_fault) and checks each storage it declares against its record
// `dir` + key, whose size `record_size` gives (nullopt: no such record).
// Returns the fault, or "".
std::string storage_fault(std::string_view p, const std::string& dir,
                          const std::function<std::optional<uint64_t>(const std::string&)>& record_size);

// A pickle opcode's name ("BINPUT" for 'q'), or nullptr for a byte that is
// no opcode of protocols 0-5.
const char* opcode_name(unsigned char op);

}  // namespace cifar
