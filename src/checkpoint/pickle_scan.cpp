#include "checkpoint/pickle_scan.h"

#include <cstdio>
#include <map>
#include <vector>

namespace cifar {

// LibTorch's unpickler sizes buffers from the pickle before reading it: a
// 100-byte debug_pkl record claiming a 4 GB string made it allocate 4 GB,
// and a LONG_BINPUT index made it reserve 28 GB of memo (both found by
// fuzz/checkpoint_fuzz). This walks every opcode of a pickle (protocols
// 0-5) and checks each length against the bytes left in the record and
// each memo index against the record's size; an opcode outside the
// protocol or a pickle without STOP is refused too. Returns the fault, or "".
std::string pickle_fault(std::string_view p) {
  size_t at = 0;
  auto left = [&] { return static_cast<uint64_t>(p.size() - at); };
  auto le = [&](size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[at + i])) << (8 * i);
    return v;
  };
  auto counted = [&](size_t width) -> std::string {  // a length field, then that many bytes
    if (left() < width) return "is truncated";
    const uint64_t n = le(width);
    at += width;
    if (n > left()) return "claims a " + std::to_string(n) + "-byte value with " + std::to_string(left()) + " bytes left";
    at += static_cast<size_t>(n);
    return "";
  };
  auto lines = [&](int count) -> std::string {  // newline-terminated arguments
    for (int i = 0; i < count; ++i) {
      const size_t nl = p.find('\n', at);
      if (nl == std::string_view::npos) return "is truncated";
      at = nl + 1;
    }
    return "";
  };
  auto fixed = [&](size_t n) -> std::string {
    if (left() < n) return "is truncated";
    at += n;
    return "";
  };
  while (at < p.size()) {
    const unsigned char op = static_cast<unsigned char>(p[at++]);
    std::string fault;
    switch (op) {
      case '.':  // STOP
        return "";
      case '(': case '0': case '1': case '2': case 'N': case 'R': case 'a': case 'b': case 'd': case '}':
      case 'e': case 'l': case ']': case 'o': case 's': case 'u': case 't': case ')': case 'Q':
      case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f: case 0x90: case 0x91:
      case 0x92: case 0x93: case 0x94: case 0x97: case 0x98:
        break;  // no argument
      case 0x80: case 'K': case 'h': case 'q': case 0x82: fault = fixed(1); break;
      case 'M': case 0x83: fault = fixed(2); break;
      case 'r':  // LONG_BINPUT: LibTorch reserves 2 * index memo slots, so a
                 // 4-byte index asked for 28 GB (fuzz/checkpoint_fuzz). A
                 // pickle stores at most one memo entry per byte.
        if (left() >= 4 && le(4) > p.size()) return "has a memo index " + std::to_string(le(4)) + " past its size";
        fault = fixed(4);
        break;
      case 'J': case 'j': case 0x84: fault = fixed(4); break;
      case 'G': case 0x95: fault = fixed(8); break;
      case 'U': case 'C': case 0x8c: case 0x8a: fault = counted(1); break;
      case 'T': case 'X': case 'B': case 0x8b: fault = counted(4); break;  // a negative i4 reads as huge
      case 0x8d: case 0x8e: case 0x96: fault = counted(8); break;
      case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g': case 'p': fault = lines(1); break;
      case 'c': case 'i': fault = lines(2); break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return std::string("holds an unknown opcode ") + hex;
      }
    }
    if (!fault.empty()) return fault;
  }
  return "has no STOP";
}

std::optional<torch::ScalarType> storage_scalar_type(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.DoubleStorage", torch::kFloat64}, {"torch.FloatStorage", torch::kFloat32},
      {"torch.HalfStorage", torch::kFloat16}, {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64}, {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16}, {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8}, {"torch.BoolStorage", torch::kBool},
      {"torch.ComplexFloatStorage", torch::kComplexFloat}, {"torch.ComplexDoubleStorage", torch::kComplexDouble}};
  const auto it = types.find(global);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

namespace {

// LibTorch 1.13 sizes each tensor storage by the element count the pickle
// states ('storage', type, key, location, numel) and fills it from record
// <dir>/<key>, never comparing the two: a storage declared larger than its
// record is read past the end of the record's buffer (found by
// fuzz/checkpoint_fuzz: 7,706 bytes read from a 2,494-byte buffer). A
// tensor cannot see this (its storage reports the declared size), so the
// pickle is run here on a small stack machine that follows only the
// opcodes LibTorch's pickler writes, and every storage it declares is
// checked against its record. Runs after pickle_fault(), so every length
// read here lies within `p`.
struct PickleValue {
  enum Kind { kOther, kMark, kString, kInt, kGlobal, kTuple } kind = kOther;
  std::string text;  // kString; kGlobal as "module.name"
  int64_t number = 0;
  std::vector<PickleValue> items;  // kTuple
};

int64_t storage_item_size(const std::string& type) {
  const auto scalar = storage_scalar_type(type);
  return scalar ? static_cast<int64_t>(c10::elementSize(*scalar)) : 0;
}

}  // namespace

std::string storage_fault(std::string_view p, const std::string& dir,
                          const std::function<std::optional<uint64_t>(const std::string&)>& record_size) {
  std::vector<PickleValue> stack;
  std::map<uint64_t, PickleValue> memo;
  size_t at = 0;
  auto le = [&](size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[at + i])) << (8 * i);
    at += n;
    return v;
  };
  auto text = [&](size_t n) {
    std::string s(p.substr(at, n));
    at += n;
    return s;
  };
  auto line = [&] {
    const size_t nl = p.find('\n', at);
    std::string s(p.substr(at, nl - at));
    at = nl + 1;
    return s;
  };
  auto push = [&](PickleValue v) { stack.push_back(std::move(v)); };
  auto pop = [&]() -> std::optional<PickleValue> {
    if (stack.empty() || stack.back().kind == PickleValue::kMark) return std::nullopt;
    PickleValue v = std::move(stack.back());
    stack.pop_back();
    return v;
  };
  auto pop_to_mark = [&]() -> std::optional<std::vector<PickleValue>> {
    for (size_t i = stack.size(); i-- > 0;) {
      if (stack[i].kind != PickleValue::kMark) continue;
      std::vector<PickleValue> items(std::make_move_iterator(stack.begin() + static_cast<std::ptrdiff_t>(i) + 1),
                                     std::make_move_iterator(stack.end()));
      stack.resize(i);
      return items;
    }
    return std::nullopt;
  };
  auto other = [] { return PickleValue{}; };
  const std::string malformed = "is malformed";
  while (at < p.size()) {
    const unsigned char op = static_cast<unsigned char>(p[at++]);
    switch (op) {
      case 0x80: at += 1; break;  // PROTO
      case 0x95: at += 8; break;  // FRAME
      case '.': return "";        // STOP
      case '(': push({PickleValue::kMark}); break;
      case ')': push({PickleValue::kTuple}); break;
      case 't': {
        auto items = pop_to_mark();
        if (!items) return malformed;
        push({PickleValue::kTuple, "", 0, std::move(*items)});
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84u;
        if (stack.size() < n) return malformed;
        PickleValue t{PickleValue::kTuple};
        for (size_t i = stack.size() - n; i < stack.size(); ++i) {
          if (stack[i].kind == PickleValue::kMark) return malformed;
          t.items.push_back(std::move(stack[i]));
        }
        stack.resize(stack.size() - n);
        push(std::move(t));
        break;
      }
      case ']': case '}': case 'N': case 0x88: case 0x89: push(other()); break;
      case 'a': if (!pop() || stack.empty()) return malformed; break;                // APPEND
      case 's': if (!pop() || !pop() || stack.empty()) return malformed; break;      // SETITEM
      case 'e': case 'u': if (!pop_to_mark() || stack.empty()) return malformed; break;  // APPENDS, SETITEMS
      case 'b': if (!pop() || stack.empty()) return malformed; break;                // BUILD
      case 'R': case 0x81: {                                                          // REDUCE, NEWOBJ
        if (!pop() || !pop()) return malformed;
        push(other());
        break;
      }
      case 'q': case 'r': case 0x94: {  // BINPUT, LONG_BINPUT, MEMOIZE
        const uint64_t key = op == 'q' ? le(1) : op == 'r' ? le(4) : memo.size();
        if (stack.empty()) return malformed;
        memo[key] = stack.back();
        break;
      }
      case 'h': case 'j': {  // BINGET, LONG_BINGET
        const auto it = memo.find(le(op == 'h' ? 1 : 4));
        if (it == memo.end()) return malformed;
        push(it->second);
        break;
      }
      case '2': if (stack.empty()) return malformed; push(stack.back()); break;  // DUP
      case '0': if (!pop()) return malformed; break;                              // POP
      case '1': if (!pop_to_mark()) return malformed; break;                      // POP_MARK
      case 'K': push({PickleValue::kInt, "", static_cast<int64_t>(le(1))}); break;
      case 'M': push({PickleValue::kInt, "", static_cast<int64_t>(le(2))}); break;
      case 'J': push({PickleValue::kInt, "", static_cast<int32_t>(le(4))}); break;
      case 0x8a: {  // LONG1: n little-endian two's-complement bytes
        const size_t n = le(1);
        if (n > 8) {
          at += n;
          push(other());
          break;
        }
        uint64_t v = le(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
        push({PickleValue::kInt, "", static_cast<int64_t>(v)});
        break;
      }
      case 'G': at += 8; push(other()); break;  // BINFLOAT
      case 'X': push({PickleValue::kString, text(le(4))}); break;
      case 0x8c: push({PickleValue::kString, text(le(1))}); break;
      case 0x8d: push({PickleValue::kString, text(le(8))}); break;
      case 'B': at += le(4); push(other()); break;
      case 'C': at += le(1); push(other()); break;
      case 0x8e: at += le(8); push(other()); break;
      case 'c': {  // GLOBAL module\nname\n
        std::string module = line();
        push({PickleValue::kGlobal, module + "." + line()});
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(), module = pop();
        if (!name || !module) return malformed;
        push({PickleValue::kGlobal, module->text + "." + name->text});
        break;
      }
      case 'Q': {  // BINPERSID: ('storage', type, key, location, numel)
        auto id = pop();
        if (!id || id->kind != PickleValue::kTuple || id->items.size() != 5 ||
            id->items[0].kind != PickleValue::kString || id->items[0].text != "storage" ||
            id->items[1].kind != PickleValue::kGlobal || id->items[2].kind != PickleValue::kString ||
            id->items[4].kind != PickleValue::kInt) {
          return "has a tensor reference that is not ('storage', type, key, location, size)";
        }
        const int64_t item = storage_item_size(id->items[1].text);
        const int64_t numel = id->items[4].number;
        if (item == 0) return "has a storage of unknown type " + id->items[1].text.substr(0, 40);
        const std::string record = dir + id->items[2].text;
        const auto size = record_size(record);
        if (!size) return "refers to a storage record " + record.substr(0, 60) + " that is not there";
        uint64_t declared = 0;
        if (numel < 0 || __builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(item), &declared) ||
            (numel > 0 && declared > *size)) {
          return "declares storage " + record + " of " + std::to_string(numel) + " x " + std::to_string(item) +
                 " bytes, but the record holds " + std::to_string(*size);
        }
        push(other());
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return std::string("holds an opcode LibTorch's pickler never writes (") + hex + ")";
      }
    }
  }
  return "has no STOP";
}

// Every pickle opcode by name, so a refusal says which one it met.
// clang-format off
const char* opcode_name(unsigned char op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}
// clang-format on

}  // namespace cifar
