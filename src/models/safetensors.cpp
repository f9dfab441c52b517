#include "models/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"

namespace cifar {
namespace {

using json = nlohmann::json;

struct DtypeName {
  const char* name;
  torch::ScalarType type;
  int order;  // the place in the safetensors crate's Dtype enum, "in increasing alignment order"
};
constexpr DtypeName kDtypes[] = {
    {"F64", torch::kFloat64, 12},  {"F32", torch::kFloat32, 11}, {"F16", torch::kFloat16, 7},
    {"BF16", torch::kBFloat16, 8}, {"I64", torch::kInt64, 13},   {"I32", torch::kInt32, 9},
    {"I16", torch::kInt16, 5},     {"I8", torch::kInt8, 2},      {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 0},
};

std::string supported_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

// Tensor bytes are copied as they lie in memory; the format is little-endian.
void check_little_endian() {
  const uint16_t probe = 1;
  uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  if (first != 1) throw UserError("safetensors files can only be read and written on a little-endian machine");
}

std::string offsets_string(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const json& value, const std::string& where) {
  const std::string what = "tensor '" + printable(name, 100) + "' in " + where;
  if (!value.is_object()) throw UserError(what + ": header entry is not an object");
  Entry e{name, torch::kFloat32, {}, 0, 0};

  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) throw UserError(what + ": header entry has no \"dtype\" string");
  const std::string dtype_name = dtype->get<std::string>();
  auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                            [&](const DtypeName& d) { return dtype_name == d.name; });
  if (known == std::end(kDtypes)) {
    throw UserError(what + " has unsupported dtype '" + printable(dtype_name, 40) + "' (supported: " +
                    supported_dtypes() + ")");
  }
  e.type = known->type;

  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) throw UserError(what + ": header entry has no \"shape\" array");
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      // Only a scalar is shown: dump() recurses, and a hostile header can
      // nest arrays a million deep.
      throw UserError(what + ": shape is not a list of sizes (found " +
                      (d.is_primitive() ? d.dump().substr(0, 40) : std::string("an ") + d.type_name()) + ")");
    }
    e.shape.push_back(d.get<int64_t>());
  }

  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    throw UserError(what + ": header entry needs \"data_offsets\": [begin, end]");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  return e;
}

// The reference implementation's limit on the header (MAX_HEADER_SIZE):
// EfficientNet-B0's is 33 kB.
constexpr uint64_t kMaxHeaderBytes = 100000000;

// Checks the header while nlohmann parses it, before the document is built:
//  - nesting: a header is 3 levels deep (the header, an entry, its shape or
//    offsets); "[[[[..." would cost about 70 bytes of memory per byte of
//    header to build (5 MB of it took 360 MB), and is refused at level 4;
//  - duplicate keys, which nlohmann would resolve silently (the last one
//    wins) while other readers keep the first: two "a" entries over the
//    same bytes with different dtypes are two different files to them.
json::parser_callback_t header_guard(const std::string& where) {
  constexpr int kMaxDepth = 3;
  auto keys = std::make_shared<std::vector<std::set<std::string>>>();
  return [where, keys](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) {
      throw UserError(where + ": header nests deeper than a safetensors header (" + std::to_string(kMaxDepth) +
                      " levels)");
    }
    if (event == json::parse_event_t::object_start) keys->emplace_back();
    if (event == json::parse_event_t::object_end) keys->pop_back();
    if (event == json::parse_event_t::key && !keys->empty() && !keys->back().insert(parsed.get<std::string>()).second) {
      throw UserError(where + ": '" + printable(parsed.get<std::string>(), 100) +
                      "' appears twice in one object of the header (readers disagree on which one counts)");
    }
    return true;
  };
}

}  // namespace

// Laid out as the Hugging Face writer (the safetensors crate's prepare(),
// which its Python binding calls) lays it out: tensors sorted by dtype,
// widest alignment first, then by name; the header lists __metadata__
// first and then the tensors in that order. Each group's bytes are a
// multiple of its element size, so every tensor starts at an offset aligned
// to its dtype, and the header padding below aligns the body to 8.
std::string encode_safetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  check_little_endian();
  struct Item {
    const std::string* name;
    const DtypeName* dtype;
    torch::Tensor body;
  };
  std::vector<Item> items;
  for (const auto& entry : tensors) {
    // Not a structured binding: C++17 lambdas cannot capture one (clang refuses).
    const std::string& name = entry.first;
    const torch::Tensor& tensor = entry.second;
    check_input(name != "__metadata__", "cannot write a tensor named __metadata__ to safetensors");
    auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                              [&](const DtypeName& d) { return tensor.scalar_type() == d.type; });
    check_input(known != std::end(kDtypes), "cannot write tensor '" + name + "' to safetensors: dtype " +
                                                std::string(c10::toString(tensor.scalar_type())) + " unsupported");
    items.push_back({&name, known, tensor.detach().to(torch::kCPU).contiguous()});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.dtype->order != b.dtype->order ? a.dtype->order > b.dtype->order : *a.name < *b.name;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& item : items) {
    const uint64_t bytes = static_cast<uint64_t>(item.body.numel()) * item.body.element_size();
    header[*item.name] = {
        {"dtype", item.dtype->name}, {"shape", item.body.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  // Invalid UTF-8 (a Latin-1 class name in metadata) becomes U+FFFD rather
  // than an exception: the file is still worth writing.
  std::string text = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  // Pad with spaces to 8 bytes, as the reference writer does, so the body
  // starts aligned for readers that map the file.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& item : items) {
    out.append(static_cast<const char*>(item.body.data_ptr()),
               static_cast<size_t>(item.body.numel() * item.body.element_size()));
  }
  return out;
}

TensorMap decode_safetensors(std::string_view bytes, const std::string& source, SafetensorsMetadata* metadata) {
  check_little_endian();
  const std::string where = "safetensors file " + source;
  if (bytes.size() < 8) {
    throw UserError(where + " is too short (" + std::to_string(bytes.size()) + " bytes) to hold a header");
  }
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (header_size > bytes.size() - 8) {
    throw UserError(where + ": header length " + std::to_string(header_size) + " runs past the end of the file (" +
                    std::to_string(bytes.size() - 8) + " bytes follow; file truncated or not safetensors?)");
  }
  if (header_size > kMaxHeaderBytes) {
    throw UserError(where + ": header length " + std::to_string(header_size) + " is over the format's limit of " +
                    std::to_string(kMaxHeaderBytes) + " bytes");
  }
  json header;
  try {
    header = json::parse(bytes.data() + 8, bytes.data() + 8 + header_size, header_guard(where));
  } catch (const json::parse_error& e) {
    throw UserError(where + ": header is not valid JSON: " + printable(one_line(e.what())));
  }
  if (!header.is_object()) throw UserError(where + ": header is not a JSON object");

  const std::string_view body = bytes.substr(8 + header_size);
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) throw UserError(where + ": __metadata__ is not an object of strings");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) {
          throw UserError(where + ": __metadata__ entry '" + printable(key, 100) + "' is not a string");
        }
        if (metadata) (*metadata)[key] = v.get<std::string>();
      }
      continue;
    }
    Entry e = parse_entry(name, value, where);
    const std::string what = "tensor '" + printable(name, 100) + "' in " + where;
    if (e.begin > e.end) {
      throw UserError(what + ": data_offsets " + offsets_string(e.begin, e.end) + " are reversed (begin after end)");
    }
    if (e.end > body.size()) {
      throw UserError(what + ": data_offsets " + offsets_string(e.begin, e.end) + " lie outside the " +
                      std::to_string(body.size()) + "-byte body (file truncated?)");
    }
    // A lying shape could overflow the product; so could its non-zero
    // sides when another is 0 (LibTorch computes strides from them).
    uint64_t needed = c10::elementSize(e.type);
    bool overflow = false;
    for (int64_t d : e.shape) {
      const auto size = static_cast<uint64_t>(d);
      if (size != 0 && needed > static_cast<uint64_t>(INT64_MAX) / size) overflow = true;
      if (size != 0) needed *= size;
    }
    if (!overflow && std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) needed = 0;
    if (overflow || needed != e.end - e.begin) {
      std::string shape = "[";
      for (size_t i = 0; i < e.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(e.shape[i]);
      throw UserError(what + ": shape " + shape + "] of " + value.at("dtype").get<std::string>() + " needs " +
                      (overflow ? std::string("more than 2^63") : std::to_string(needed)) +
                      " bytes but data_offsets " + offsets_string(e.begin, e.end) + " hold " +
                      std::to_string(e.end - e.begin));
    }
    entries.push_back(std::move(e));
  }

  std::vector<const Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
  uint64_t position = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : order) {
    if (e->begin < position) {
      throw UserError("tensors '" + printable(previous->name, 100) + "' " + offsets_string(previous->begin, previous->end) + " and '" +
                      printable(e->name, 100) + "' " + offsets_string(e->begin, e->end) + " in " + where + " overlap");
    }
    if (e->begin > position) {
      throw UserError(where + ": " + std::to_string(e->begin - position) + " unused bytes before tensor '" + printable(e->name, 100) +
                      "' (data_offsets must tile the body)");
    }
    position = e->end;
    previous = e;
  }
  if (position != body.size()) {
    throw UserError(where + ": " + std::to_string(body.size() - position) +
                    " unused bytes after the last tensor (data_offsets must tile the body)");
  }

  TensorMap tensors;
  for (const auto& e : entries) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), body.data() + e.begin, e.end - e.begin);
    tensors.emplace(e.name, std::move(t));
  }
  return tensors;
}

void write_safetensors(const std::string& path, const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

TensorMap read_safetensors(const std::string& path, SafetensorsMetadata* metadata) {
  const std::string bytes = read_file(path);
  return decode_safetensors(bytes, path, metadata);
}

}  // namespace cifar
