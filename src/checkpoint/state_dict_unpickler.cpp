#include "checkpoint/state_dict_unpickler.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "common/error.h"
#include "common/printable.h"
#include "checkpoint/pickle_scan.h"

namespace cifar {

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

namespace {

// The only callables a state dict's pickle names.
constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

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

}  // namespace

ValuePtr unpickle_state_dict(std::string_view pickle, const std::string& where, const std::string& storage_dir,
                             const std::map<std::string, std::string>& records) {
  return Unpickler(pickle, where, storage_dir, records).run();
}

}  // namespace cifar
