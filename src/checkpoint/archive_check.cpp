#include "checkpoint/archive_check.h"

#include <archive.h>
#include <archive_entry.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "common/error.h"
#include "common/printable.h"
#include "checkpoint/pickle_scan.h"

namespace cifar {
namespace {

// Reads never past the end: LibTorch's own MemoryReadAdapter memcpy()s
// whatever range the zip reader asks for.
class BoundedReadAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  BoundedReadAdapter(const char* data, size_t size) : data_(data), size_(size) {}
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* = "") const override {
    if (pos >= size_) return 0;
    const size_t count = std::min<uint64_t>(n, size_ - pos);
    std::memcpy(buf, data_ + pos, count);
    return count;
  }

 private:
  const char* data_;
  size_t size_;
};

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// "name" with no quote, backslash or line break inside.
bool is_quoted_name(std::string_view s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"' &&
         s.substr(1, s.size() - 2).find_first_of("\"\\\n") == std::string_view::npos;
}

// The attribute types LibTorch's OutputArchive declares: tensors, scalars,
// tuples of scalars (Adam's betas), and the nested archives' classes.
bool is_declared_type(std::string_view t) {
  for (std::string_view simple : {"Tensor", "str", "int", "float", "bool", "__torch__.Module"}) {
    if (t == simple) return true;
  }
  if (starts_with(t, "Tuple[") && t.back() == ']') {
    std::string_view inner = t.substr(6, t.size() - 7);
    while (true) {
      const auto comma = inner.find(", ");
      const std::string_view item = inner.substr(0, comma);
      if (item != "int" && item != "float" && item != "bool" && item != "str") return false;
      if (comma == std::string_view::npos) return true;
      inner.remove_prefix(comma + 2);
    }
  }
  const std::string_view mangle = "__torch__.___torch_mangle_", module = ".Module";
  if (starts_with(t, mangle) && t.size() > mangle.size() + module.size() &&
      t.substr(t.size() - module.size()) == module) {
    const std::string_view digits = t.substr(mangle.size(), t.size() - mangle.size() - module.size());
    return std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  }
  return false;
}

// One line of the code/*.py LibTorch's OutputArchive writes: a class of
// attribute declarations and nothing else.
bool is_declaration_line(std::string_view line) {
  if (line.empty() || line == "class Module(Module):") return true;
  if (!starts_with(line, "  ")) return false;
  line.remove_prefix(2);
  if (line == "__annotations__ = []") return true;
  for (std::string_view list : {"__parameters__ = [", "__buffers__ = ["}) {
    if (!starts_with(line, list)) continue;
    std::string_view rest = line.substr(list.size());  // ("name", )* ]
    while (rest != "]") {
      const auto end = rest.find("\", ");
      if (end == std::string_view::npos || !is_quoted_name(rest.substr(0, end + 1))) return false;
      rest.remove_prefix(end + 3);
    }
    return true;
  }
  if (starts_with(line, "__annotations__[")) {
    const auto close = line.find("] = ");
    return close != std::string_view::npos && is_quoted_name(line.substr(16, close - 16)) &&
           is_declared_type(line.substr(close + 4));
  }
  const auto colon = line.find(" : ");
  return colon != std::string_view::npos && is_identifier(line.substr(0, colon)) &&
         is_declared_type(line.substr(colon + 3));
}

std::string code_fault(std::string_view code) {
  size_t number = 1;
  for (size_t at = 0; at <= code.size(); ++number) {
    const size_t nl = std::min(code.find('\n', at), code.size());
    if (!is_declaration_line(code.substr(at, nl - at))) {
      return "line " + std::to_string(number) + " is not an attribute declaration";
    }
    at = nl + 1;
  }
  return "";
}

}  // namespace

// LibTorch 1.13 builds its zip reader (miniz) with CRC checks off, so a
// checkpoint whose tensor bytes were damaged on disk loaded, and predicted
// "automobile 1.000" for a ship. libarchive's zip reader checks each
// record's CRC-32 as it reads it: every record is read through it once.
void read_zip_records(std::string_view bytes, const std::string& label, const ZipRecordSink& on_record) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  if (!a) throw UserError("cannot allocate a zip reader to check " + label, kExitRuntime);
  archive_read_support_format_zip_seekable(a.get());
  auto corrupt = [&](const std::string& where, const char* why) {
    throw UserError(label + " is corrupt: " + where + (why ? one_line(why) : "unreadable") +
                    " (hint: the file was damaged after it was written; use another copy)");
  };
  // In 1 MiB blocks: libarchive 3.6 checksums a stored record over
  // (block length mod 2^32) bytes, so one block of the whole file failed
  // every record of 4 GiB or more.
  if (archive_read_open_memory2(a.get(), bytes.data(), bytes.size(), 1 << 20) != ARCHIVE_OK) {
    corrupt("", archive_error_string(a.get()));
  }
  uint64_t total = 0;  // bytes handed over, all records together
  while (true) {
    struct archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) return;
    if (r != ARCHIVE_OK) corrupt("", archive_error_string(a.get()));
    const char* raw_name = archive_entry_pathname(entry);
    const std::string name = raw_name ? raw_name : "";
    const std::string where = "record " + printable(raw_name ? name : "?", 100) + ": ";
    std::string data;
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int status = ARCHIVE_OK;
    while ((status = archive_read_data_block(a.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (!on_record) continue;
      // Stored records cannot outgrow the file; compressed ones could (a
      // zip bomb), and these are kept in memory.
      const auto end = static_cast<uint64_t>(offset) + size;
      total += size;
      if (offset < 0 || end > bytes.size() || total > bytes.size()) {
        corrupt(where, "the records expand past the size of the whole file");
      }
      if (data.size() < end) data.resize(static_cast<size_t>(end));
      if (size > 0) std::memcpy(data.data() + offset, block, size);
    }
    if (status != ARCHIVE_EOF) corrupt(where, archive_error_string(a.get()));
    if (on_record) on_record(name, std::move(data));
  }
}

// A LibTorch archive is a TorchScript module, and torch::jit::load compiles
// the code/*.py it carries and runs any __setstate__ method, or a
// registered C++ class's (torch.classes.*), while unpickling. The archives
// cifar10 writes hold attribute declarations only, so every code line must
// be one (is_declaration_line) and no pickle may name a custom class; the
// rest is refused before LibTorch loads it. That closes "a checkpoint runs
// code", and keeps hostile source away from LibTorch's TorchScript parser,
// which crashed (SIGSEGV in ScriptTypeParser::parseClassConstant) on a
// misspelt "__parametrrs__ = [...]" (fuzz/checkpoint_fuzz). The zip reader
// and the unpickler are still LibTorch's (see docs/SECURITY.md).
void check_archive(std::string_view bytes, const std::string& source) {
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<BoundedReadAdapter>(bytes.data(), bytes.size()));
  const auto records = reader.getAllRecords();
  // After LibTorch's reader took the file as a zip: what is no zip at all,
  // or cut short, is named so by the caller.
  read_zip_records(bytes, "checkpoint " + source);
  std::map<std::string, uint64_t> sizes;  // of the tensor records, read once
  auto record_size = [&](const std::string& name) -> std::optional<uint64_t> {
    if (auto it = sizes.find(name); it != sizes.end()) return it->second;
    if (std::find(records.begin(), records.end(), name) == records.end()) return std::nullopt;
    return sizes[name] = std::get<1>(reader.getRecord(name));
  };
  for (const auto& name : records) {
    const bool code = name.size() >= 3 && name.compare(name.size() - 3, 3, ".py") == 0;
    // data.pkl, constants.pkl and code/*.py.debug_pkl
    const bool pickle = name.size() >= 3 && name.compare(name.size() - 3, 3, "pkl") == 0;
    if (name == "model.json" || name.find("/model.json") != std::string::npos) {
      throw UserError("checkpoint " + source + " is a legacy TorchScript archive, which cifar10 never writes");
    }
    if (!code && !pickle) continue;
    auto [data, size] = reader.getRecord(name);
    // Record names are the archive's bytes too (fuzz finding F14: "data\x0epkl").
    const std::string shown = printable(name);
    const std::string_view text(static_cast<const char*>(data.get()), size);
    if (code) {
      if (const std::string fault = code_fault(text); !fault.empty()) {
        throw UserError("checkpoint " + source + " carries TorchScript code (" + shown + ", " + fault +
                        "), which cifar10 never writes; refusing to load it, as LibTorch would run it");
      }
    }
    if (text.find("torch.classes") != std::string_view::npos) {
      throw UserError("checkpoint " + source + " names a TorchScript class (" + shown +
                      "), which cifar10 never writes; refusing to load it, as LibTorch would run its code");
    }
    if (pickle) {
      std::string fault = pickle_fault(text);
      // The two pickles that hold tensors, and the folders of their storages.
      if (fault.empty() && (name == "data.pkl" || name == "constants.pkl")) {
        fault = storage_fault(text, name == "data.pkl" ? "data/" : "constants/", record_size);
      }
      if (!fault.empty()) {
        throw UserError("checkpoint " + source + " is corrupt: its record " + shown + " " + printable(fault));
      }
    }
  }
}

// LibTorch 1.13 rebuilds a tensor with the sizes, strides and offset its
// pickle states, without checking them against the storage record it
// points to: a tensor can claim more bytes than it owns. Found by
// fuzz/checkpoint_fuzz (tensor_to_bytes read 7,706 bytes from a 2,494-byte
// buffer); model weights loaded with such a tensor would be read out of
// bounds by every forward pass. So every tensor taken from an archive is
// checked here before it is used.
void check_within_storage(const torch::Tensor& t, const std::string& source, const std::string& what) {
  if (!t.defined() || t.numel() == 0) return;
  auto corrupt = [&](const std::string& why) {
    throw UserError("checkpoint " + source + " is corrupt: " + what + " " + why);
  };
  if (!t.has_storage() || t.storage_offset() < 0) corrupt("has no storage");
  int64_t last = t.storage_offset();  // index of the last element, in elements
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t extent = 0;
    if (t.stride(d) < 0 || __builtin_mul_overflow(t.size(d) - 1, t.stride(d), &extent) ||
        __builtin_add_overflow(last, extent, &last)) {
      corrupt("has impossible strides");
    }
  }
  uint64_t needed = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(last) + 1, static_cast<uint64_t>(t.element_size()), &needed) ||
      needed > t.storage().nbytes()) {
    corrupt("claims " + std::to_string(needed) + " bytes of a " + std::to_string(t.storage().nbytes()) +
            "-byte storage");
  }
}

}  // namespace cifar
