// The state dict unpickler behind read_pth: runs the pickle of a .pth
// file on a small machine that knows only the opcodes and globals a state
// dict needs (pth_reader.h says which, and why), and returns what it built.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cifar {

// Python objects as far as a state dict needs them. Shared, as in Python:
// a memo entry fetched twice is one object, so a pickle that refers to a
// tuple a million times holds it once (copies grew exponentially).
//
// A dict keeps no container as a value (it holds kNested instead): the only
// nested dicts a state dict has are _metadata's, which are never read, and
// a dict that cannot hold containers cannot be made to hold itself (a
// cycle of shared pointers, never freed). Tuples, built from values that
// exist before them, nest at most kMaxDepth deep: their destructors
// recurse, and 10^6 nested TUPLE1s overflowed the stack.
constexpr int kMaxDepth = 32;  // a state dict nests 4 deep

struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum Kind { kNone, kBool, kInt, kString, kTuple, kDict, kGlobal, kStorage, kTensor, kNested } kind = kNone;
  int64_t number = 0;                                // kInt, kBool
  std::string text;                                  // kString; kGlobal as "module.name"; kStorage its key
  std::vector<ValuePtr> items;                       // kTuple
  std::vector<std::pair<ValuePtr, ValuePtr>> pairs;  // kDict, in insertion order
  torch::Tensor tensor;                              // kStorage (1-D, the whole storage), kTensor
  int depth = 1;                                     // kTuple: 1 + its deepest item's
};

// "None", "a tuple", ...: how errors name a value of `kind`.
const char* kind_name(Value::Kind kind);

// The value the pickle `pickle` builds (a state dict: a kDict of names to
// kTensor). Storages come from `records` (zip record name -> bytes), under
// `storage_dir`. Throws UserError "<where> <fault>" on anything a state
// dict never holds.
ValuePtr unpickle_state_dict(std::string_view pickle, const std::string& where, const std::string& storage_dir,
                             const std::map<std::string, std::string>& records);

}  // namespace cifar
