#include "checkpoint/pth_reader.h"

#include <cstring>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "checkpoint/archive_check.h"
#include "checkpoint/pickle_scan.h"
#include "checkpoint/state_dict_unpickler.h"

namespace cifar {
namespace {

bool little_endian() {
  const uint16_t probe = 1;
  uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

}  // namespace

bool is_zip(std::string_view bytes) { return bytes.substr(0, 4) == std::string_view("PK\x03\x04", 4); }

TensorMap decode_pth(std::string_view bytes, const std::string& source) {
  const std::string label = "weights file " + source;
  if (!little_endian()) throw UserError(".pth files can only be read on a little-endian machine");
  if (!is_zip(bytes)) {
    // The format before PyTorch 1.6: pickles back to back, led by a magic
    // number (0x1950a86a20f9469cfc6c) in protocol 2.
    const bool legacy = bytes.substr(0, 2) == std::string_view("\x80\x02", 2);
    throw UserError(label +
                    (legacy ? " is in the pre-1.6 torch.save format, which cifar10 does not read"
                            : " is not a PyTorch .pth file (not a zip archive)") +
                    " (hint: save it again in Python with torch.save(torch.load(F), F), or give a .safetensors file)");
  }
  std::map<std::string, std::string> records;
  read_zip_records(bytes, label, [&](const std::string& name, std::string&& data) { records[name] = std::move(data); });
  // Every record sits under one folder, <name>/, named by torch.save.
  std::string pickle_name;
  for (const auto& [name, data] : records) {
    // LibTorch's archives hold <name>/code/ and <name>/constants.pkl too.
    const std::string rest = name.substr(name.find('/') + 1);
    if (rest.rfind("code/", 0) == 0 || rest == "constants.pkl") {
      throw UserError(label +
                      " is a LibTorch archive (a cifar10 checkpoint or a TorchScript module), not weights "
                      "saved by torch.save (hint: start from a cifar10 checkpoint with --load-model, or export "
                      "its weights with cifar10 export)");
    }
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") pickle_name = name;
  }
  if (pickle_name.empty()) throw UserError(label + " holds no <name>/data.pkl: it is not a torch.save file");
  const std::string dir = pickle_name.substr(0, pickle_name.size() - std::string("data.pkl").size());
  if (auto order = records.find(dir + "byteorder"); order != records.end() && order->second != "little") {
    throw UserError(label + " was saved on a big-endian machine (byteorder " + printable(order->second, 20) + ")");
  }
  const std::string& pickle = records[pickle_name];
  const std::string where = label + ": its pickle " + printable(pickle_name, 100);
  if (const std::string fault = pickle_fault(pickle); !fault.empty()) throw UserError(where + " " + fault);
  ValuePtr top;
  try {
    top = unpickle_state_dict(pickle, where, dir + "data/", records);
  } catch (const c10::Error& e) {
    // LibTorch refusing a size or view the checks above let through.
    throw UserError(where + " is malformed: " + printable(first_line(e.what_without_backtrace()), 200));
  }

  if (top->kind != Value::kDict) {
    throw UserError(label + " holds " + kind_name(top->kind) + ", not a state dict (names mapped to tensors)");
  }
  TensorMap tensors;
  for (const auto& [key, value] : top->pairs) {
    if (key->kind != Value::kString || value->kind != Value::kTensor) {
      throw UserError(label + " maps " + kind_name(key->kind) + " to " + kind_name(value->kind) +
                      ": not a state dict (names mapped to tensors)");
    }
    if (!tensors.emplace(key->text, value->tensor).second) {
      throw UserError(label + " holds tensor " + printable(key->text, 100) + " twice");
    }
  }
  return tensors;
}

TensorMap read_pth(const std::string& path) { return decode_pth(read_file(path), path); }

}  // namespace cifar
