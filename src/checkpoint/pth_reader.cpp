#include "checkpoint/pth_reader.h"

#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "checkpoint/archive_check.h"
#include "checkpoint/pickle_scan.h"

namespace cifar {
namespace {

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

// The only callables a state dict's pickle names.
constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

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

// clang-format off
const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::kNone: return "None";
    case Value::kBool: return "a bool";
    case Value::kInt: return "an int";
    case Value::kString: return "a string";
    case Value::kTuple: return "a tuple";
    case Value::kDict: return "a dict";
    case Value::kGlobal: return "a class or function";
    case Value::kStorage: return "a storage";
    case Value::kTensor: return "a tensor";
    case Value::kNested: return "a container";
  }
  return "a value";
}
// clang-format on

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

class Unpickler {
 public:
  Unpickler(std::string_view pickle, const std::string& where, const std::string& storage_dir,
            const std::map<std::string, std::string>& records)
      : p_(pickle), where_(where), storage_dir_(storage_dir), records_(records) {}

  ValuePtr run() {
    while (at_ < p_.size()) {
      const size_t start = at_;
      const unsigned char op = static_cast<unsigned char>(p_[at_++]);
      if (op == '.') {
        if (stack_.size() != 1 || !marks_.empty()) fail("ends with " + std::to_string(stack_.size()) + " values");
        return stack_.back();
      }
      step(op, start);
    }
    fail("has no STOP");
    return nullptr;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw UserError(where_ + " " + why); }

  [[noreturn]] void refuse_opcode(unsigned char op, size_t at) const {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op);
    const char* name = opcode_name(op);
    fail("holds pickle opcode " + std::string(name ? name : "(unknown)") + " (" + hex + ") at byte " +
         std::to_string(at) + ", which a state dict never holds; refusing to load it");
  }

  // ---- reading the opcode's argument, never past the end ----
  uint64_t le(size_t n) {
    if (p_.size() - at_ < n) fail("is truncated");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p_[at_ + i])) << (8 * i);
    at_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    if (p_.size() - at_ < n) fail("claims a " + std::to_string(n) + "-byte string past its end");
    std::string s(p_.substr(at_, static_cast<size_t>(n)));
    at_ += static_cast<size_t>(n);
    return s;
  }
  std::string line() {
    const size_t nl = p_.find('\n', at_);
    if (nl == std::string_view::npos) fail("is truncated");
    std::string s(p_.substr(at_, nl - at_));
    at_ = nl + 1;
    return s;
  }

  // ---- the stack ----
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("is malformed (pops an empty stack)");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("is malformed (reads an empty stack)");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("is malformed (no MARK)");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  ValuePtr expect(ValuePtr v, Value::Kind kind, const std::string& what) const {
    if (v->kind != kind) fail("has " + std::string(kind_name(v->kind)) + " where " + what + " should be");
    return v;
  }
  int64_t expect_int(const ValuePtr& v, const std::string& what) const {
    return expect(v, Value::kInt, what + " (an int)")->number;
  }

  void memoize(uint64_t key) { memo_[key] = top(); }
  void fetch(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) fail("is malformed (memo " + std::to_string(key) + " was never stored)");
    push(it->second);
  }

  // GLOBAL and STACK_GLOBAL: only the names a state dict uses.
  void global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (full != kOrderedDict && full != kRebuildTensor && full != kRebuildParameter && !storage_scalar_type(full)) {
      fail("names the global " + printable(full, 80) +
           ", which a state dict never does (it may name only collections.OrderedDict, "
           "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the torch storage classes); "
           "refusing to load it");
    }
    auto v = make(Value::kGlobal);
    v->text = full;
    push(v);
  }

  void push_tuple(std::vector<ValuePtr> items) {
    auto t = make(Value::kTuple);
    for (const auto& item : items) t->depth = std::max(t->depth, item->depth + 1);
    if (t->depth > kMaxDepth) fail("nests tuples more than " + std::to_string(kMaxDepth) + " deep");
    t->items = std::move(items);
    push(t);
  }

  void tuple_of(size_t n) {
    std::vector<ValuePtr> items(n);
    for (size_t i = n; i-- > 0;) items[i] = pop();
    push_tuple(std::move(items));
  }

  void set_items(ValuePtr dict, std::vector<ValuePtr> items) {
    expect(dict, Value::kDict, "a dict to fill");
    if (items.size() % 2 != 0) fail("is malformed (SETITEMS with an odd count)");
    for (size_t i = 0; i < items.size(); i += 2) {
      ValuePtr& value = items[i + 1];
      if (value->kind == Value::kDict || value->kind == Value::kTuple) value = make(Value::kNested);
      dict->pairs.emplace_back(items[i], value);
    }
  }

  // ('storage', torch.FloatStorage, key, location, numel), as torch.save
  // writes a storage; each key is read from its record once.
  ValuePtr storage(const ValuePtr& id) {
    if (id->kind != Value::kTuple || id->items.size() != 5 || id->items[0]->kind != Value::kString ||
        id->items[0]->text != "storage" || id->items[1]->kind != Value::kGlobal ||
        id->items[2]->kind != Value::kString || id->items[3]->kind != Value::kString ||
        id->items[4]->kind != Value::kInt) {
      fail("has a persistent id that is not ('storage', type, key, location, size)");
    }
    const auto scalar = storage_scalar_type(id->items[1]->text);
    if (!scalar) fail("has a storage of class " + printable(id->items[1]->text, 80) + ", not a storage class");
    const std::string& key = id->items[2]->text;
    const int64_t numel = id->items[4]->number;
    const std::string record = storage_dir_ + key;
    const std::string shown = printable(record, 100);
    if (auto it = storages_.find(key); it != storages_.end()) {
      if (it->second->tensor.scalar_type() != *scalar || it->second->tensor.numel() != numel) {
        fail("declares storage " + shown + " twice, with different types or sizes");
      }
      return it->second;
    }
    const auto found = records_.find(record);
    if (found == records_.end()) fail("refers to storage " + shown + ", which the file does not hold");
    const uint64_t item = c10::elementSize(*scalar);
    uint64_t declared = 0;
    if (numel < 0 || __builtin_mul_overflow(static_cast<uint64_t>(numel), item, &declared) ||
        declared != found->second.size()) {
      fail("declares storage " + shown + " of " + std::to_string(numel) + " x " + std::to_string(item) +
           " bytes, but its record holds " + std::to_string(found->second.size()) + " bytes");
    }
    auto v = make(Value::kStorage);
    v->text = key;
    v->tensor = torch::empty({numel}, torch::TensorOptions().dtype(*scalar));
    if (declared > 0) std::memcpy(v->tensor.data_ptr(), found->second.data(), declared);
    storages_.emplace(key, v);
    return v;
  }

  std::vector<int64_t> sizes_of(const ValuePtr& v, const std::string& what) const {
    expect(v, Value::kTuple, what + " (a tuple)");
    // LibTorch allows 64 dimensions; a weight has at most 5.
    if (v->items.size() > 64) fail("has a tensor of " + std::to_string(v->items.size()) + " dimensions");
    std::vector<int64_t> out;
    for (const auto& item : v->items) {
      const int64_t n = expect_int(item, what);
      if (n < 0) fail("has a negative tensor " + what + " " + std::to_string(n));
      out.push_back(n);
    }
    return out;
  }

  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
  // requires_grad, backward_hooks[, metadata]).
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
    if (args.size() != 6 && args.size() != 7) {
      fail("calls _rebuild_tensor_v2 with " + std::to_string(args.size()) + " arguments, not 6");
    }
    const ValuePtr store = expect(args[0], Value::kStorage, "a tensor's storage");
    const int64_t offset = expect_int(args[1], "a tensor's offset");
    const std::vector<int64_t> size = sizes_of(args[2], "size");
    const std::vector<int64_t> stride = sizes_of(args[3], "stride");
    expect(args[4], Value::kBool, "requires_grad (a bool)");
    check_no_hooks(args[5]);
    if (args.size() == 7 && args[6]->kind != Value::kNone && args[6]->kind != Value::kDict) {
      fail("has " + std::string(kind_name(args[6]->kind)) + " as a tensor's metadata");
    }
    if (size.size() != stride.size()) fail("has a tensor whose size and stride differ in length");
    // The last element's index must lie in the storage; nothing does when a
    // side is 0.
    const int64_t storage_numel = store->tensor.numel();
    bool empty = false;
    int64_t last = offset;
    bool overflow = offset < 0;
    for (size_t d = 0; d < size.size(); ++d) {
      int64_t extent = 0;
      if (size[d] == 0) empty = true;
      if (size[d] > 0 &&
          (__builtin_mul_overflow(size[d] - 1, stride[d], &extent) || __builtin_add_overflow(last, extent, &last))) {
        overflow = true;
      }
    }
    if (!empty && (overflow || last >= storage_numel)) {
      fail("has a tensor that reaches past its storage " + printable(storage_dir_ + store->text, 100) + " of " +
           std::to_string(storage_numel) + " elements");
    }
    // More elements than the storage holds means overlapping strides (an
    // expanded view, stride 0): no weight is saved so, and 2^40 elements of
    // one float cost nothing here but terabytes to whoever copies them.
    int64_t numel = 1;
    for (int64_t side : size) {
      if (__builtin_mul_overflow(numel, side, &numel)) numel = INT64_MAX;
    }
    if (!empty && numel > storage_numel) {
      fail("has a tensor of " + std::to_string(numel) + " elements over a storage of " + std::to_string(storage_numel) +
           " (overlapping strides)");
    }
    auto v = make(Value::kTensor);
    v->tensor = empty ? torch::empty(size, store->tensor.options()) : store->tensor.as_strided(size, stride, offset);
    return v;
  }

  // Backward hooks are functions to call: a state dict has none.
  void check_no_hooks(const ValuePtr& hooks) const {
    if (hooks->kind == Value::kNone) return;
    expect(hooks, Value::kDict, "backward hooks (an empty OrderedDict)");
    if (!hooks->pairs.empty()) fail("has a tensor with backward hooks, which a state dict never has");
  }

  void reduce() {
    auto args = expect(pop(), Value::kTuple, "arguments (a tuple)");
    auto callable = pop();
    if (callable->kind != Value::kGlobal) {
      fail("calls " + std::string(kind_name(callable->kind)) + ", which a state dict never does");
    }
    const std::string& name = callable->text;
    if (name == kOrderedDict) {
      if (!args->items.empty()) fail("calls OrderedDict with arguments, which torch.save never writes");
      push(make(Value::kDict));
    } else if (name == kRebuildTensor) {
      push(rebuild_tensor(args->items));
    } else if (name == kRebuildParameter) {
      // _rebuild_parameter(data, requires_grad, backward_hooks)
      if (args->items.size() != 3)
        fail("calls _rebuild_parameter with " + std::to_string(args->items.size()) + " arguments, not 3");
      expect(args->items[0], Value::kTensor, "a parameter's data");
      expect(args->items[1], Value::kBool, "requires_grad (a bool)");
      check_no_hooks(args->items[2]);
      push(args->items[0]);
    } else {
      fail("calls " + printable(name, 80) + ", which a state dict never does");
    }
  }

  void step(unsigned char op, size_t start) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t protocol = le(1);
        if (protocol < 2 || protocol > 5) fail("is pickle protocol " + std::to_string(protocol) + ", not 2 to 5");
        break;
      }
      case 0x95:  // FRAME: a length hint only
        le(8);
        break;
      case 'c': {  // GLOBAL
        std::string module = line();
        global(module, line());
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = expect(pop(), Value::kString, "a global's name");
        auto module = expect(pop(), Value::kString, "a global's module");
        global(module->text, name->text);
        break;
      }
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case ')':  // EMPTY_TUPLE
        push(make(Value::kTuple));
        break;
      case 't':  // TUPLE
        push_tuple(pop_to_mark());
        break;
      case 0x85:
      case 0x86:
      case 0x87:  // TUPLE1..3
        tuple_of(op - 0x84u);
        break;
      case '}':  // EMPTY_DICT
        push(make(Value::kDict));
        break;
      case 'N':  // NONE
        push(make(Value::kNone));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto v = make(Value::kBool);
        v->number = op == 0x88;
        push(v);
        break;
      }
      case 'K':
      case 'M':
      case 'J':
      case 0x8a: {  // BININT1, BININT2, BININT, LONG1
        int64_t n = 0;
        if (op == 'K') n = static_cast<int64_t>(le(1));
        if (op == 'M') n = static_cast<int64_t>(le(2));
        if (op == 'J') n = static_cast<int32_t>(le(4));
        if (op == 0x8a) {  // n little-endian two's-complement bytes
          const size_t width = le(1);
          if (width > 8) fail("holds an integer of " + std::to_string(width) + " bytes");
          uint64_t v = le(width);
          if (width > 0 && width < 8 && ((v >> (8 * width - 1)) & 1)) v |= ~uint64_t{0} << (8 * width);
          n = static_cast<int64_t>(v);
        }
        auto v = make(Value::kInt);
        v->number = n;
        push(v);
        break;
      }
      case 'X':
      case 0x8c:
      case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        auto v = make(Value::kString);
        v->text = bytes(le(op == 'X' ? 4 : op == 0x8c ? 1 : 8));
        push(v);
        break;
      }
      case 'q':  // BINPUT
        memoize(le(1));
        break;
      case 'r':  // LONG_BINPUT
        memoize(le(4));
        break;
      case 0x94:  // MEMOIZE
        memoize(memo_.size());
        break;
      case 'h':  // BINGET
        fetch(le(1));
        break;
      case 'j':  // LONG_BINGET
        fetch(le(4));
        break;
      case 'R':  // REDUCE
        reduce();
        break;
      case 's': {  // SETITEM
        auto value = pop();
        auto key = pop();
        set_items(top(), {key, value});
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_to_mark();
        set_items(top(), std::move(items));
        break;
      }
      case 'b': {  // BUILD: an OrderedDict's attributes (_metadata), unused
        auto state = pop();
        expect(top(), Value::kDict, "an object to build (a state dict)");
        if (state->kind != Value::kDict && state->kind != Value::kNone) {
          fail("sets a dict's attributes from " + std::string(kind_name(state->kind)));
        }
        break;
      }
      case 'Q':  // BINPERSID
        push(storage(pop()));
        break;
      default:
        refuse_opcode(op, start);
    }
  }

  std::string_view p_;
  const std::string& where_;
  const std::string& storage_dir_;
  const std::map<std::string, std::string>& records_;
  size_t at_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
};

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
    top = Unpickler(pickle, where, dir + "data/", records).run();
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
