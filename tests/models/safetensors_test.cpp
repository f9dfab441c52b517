// The safetensors reader/writer, and loading torchvision-named EfficientNet
// weights through it.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "models/efficientnet.h"
#include "models/registry.h"
#include "models/safetensors.h"
#include "test_util.h"

namespace cifar {
namespace {
using json = nlohmann::json;
using testing::TempDir;
using testing::write_bytes;

std::string le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A file from a header text and a body, as a foreign writer would make it.
std::string raw_file(const std::string& header, const std::string& body) { return le64(header.size()) + header + body; }

// Splits encoded bytes back into header JSON and body.
std::pair<json, std::string> split(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

std::string read_error(const std::filesystem::path& path) {
  try {
    read_safetensors(path.string());
  } catch (const UserError& e) {
    EXPECT_EQ(e.exit_code(), kExitBadInput);
    return e.what();
  }
  return "(no error)";
}

std::string error_for_bytes(const std::string& bytes) {
  TempDir tmp("st");
  auto path = tmp / "bad.safetensors";
  write_bytes(path, bytes);
  auto msg = read_error(path);
  EXPECT_NE(msg.find(path.string()), std::string::npos) << "message does not name the file: " << msg;
  return msg;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string testing_bytes_of(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel() * c.element_size()));
}

TEST(Safetensors, RoundTripKeepsEveryDtypeShapeValueAndMetadata) {
  torch::manual_seed(3);
  TensorMap tensors = {
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kFloat64)},
      {"f16", torch::randn({3, 1}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::tensor({int64_t{-5}, int64_t{1} << 40})},
      {"i32", torch::tensor({1, -2, 3}, torch::kInt32)},
      {"i16", torch::tensor({7, -8}, torch::kInt16)},
      {"i8", torch::tensor({-1}, torch::kInt8)},
      {"u8", torch::tensor({255, 0}, torch::kUInt8)},
      {"bool", torch::tensor({true, false})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::arange(12, torch::kFloat32).view({3, 4}).t()},
  };
  TempDir tmp("st");
  const std::string path = (tmp / "all.safetensors").string();
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "round trip"}});
  SafetensorsMetadata meta;
  auto back = read_safetensors(path, &meta);
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back[name].scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back[name].sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back[name], t)) << name;
  }
  EXPECT_EQ(meta, (SafetensorsMetadata{{"format", "pt"}, {"note", "round trip"}}));
}

TEST(Safetensors, LayoutIsLengthThenPaddedJsonThenTiledLittleEndianBytes) {
  TensorMap tensors = {{"b", torch::tensor({1.0f, -2.0f})}, {"a", torch::tensor({int64_t{258}})}};
  const std::string bytes = encode_safetensors(tensors);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 16);
  auto [header, body] = split(bytes);
  EXPECT_FALSE(header.contains("__metadata__"));  // none given
  EXPECT_EQ(header["b"]["dtype"], "F32");
  EXPECT_EQ(header["b"]["shape"], json::array({2}));
  EXPECT_EQ(header["a"]["dtype"], "I64");
  EXPECT_EQ(header["a"]["shape"], json::array({1}));
  // I64 before F32 (widest alignment first): a (8 bytes), then b (8 bytes).
  EXPECT_EQ(header["a"]["data_offsets"], json::array({0, 8}));
  EXPECT_EQ(header["b"]["data_offsets"], json::array({8, 16}));
  EXPECT_EQ(body.substr(0, 8), std::string("\x02\x01\0\0\0\0\0\0", 8));              // 258
  EXPECT_EQ(body.substr(8, 8), std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8));  // 1.0f, -2.0f
}

// The byte layouts the safetensors crate's own tests pin for its writer
// (tensor.rs: test_serialization_forced_alignement, test_empty).
TEST(Safetensors, WritesTheBytesHuggingFacesWriterWrites) {
  const std::string attn0 = encode_safetensors({{"attn0", torch::arange(6, torch::kFloat32).reshape({1, 1, 2, 3})}});
  const std::string header = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
  EXPECT_EQ(attn0, le64(72) + header + std::string(7, ' ') + testing_bytes_of(torch::arange(6, torch::kFloat32)));
  EXPECT_EQ(encode_safetensors({}, {{"framework", "pt"}}),
            le64(40) + R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));
}

// Sorted by dtype, widest alignment first (the crate's Dtype order), then
// by name; __metadata__ leads the header; every offset is aligned.
TEST(Safetensors, OrdersTensorsAsHuggingFaceDoes) {
  const TensorMap tensors = {{"b", torch::ones({3})},
                             {"a", torch::ones({1}, torch::kInt64)},
                             {"c", torch::ones({3}, torch::kFloat16)},
                             {"d", torch::ones({3}, torch::kBool)},
                             {"e", torch::ones({1}, torch::kFloat64)},
                             {"f", torch::ones({1}, torch::kInt32)},
                             {"g", torch::ones({1}, torch::kBFloat16)},
                             {"h", torch::ones({2}, torch::kUInt8)},
                             {"aa", torch::ones({1})}};
  const std::string bytes = encode_safetensors(tensors, {{"k", "v"}});
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  const auto ordered = nlohmann::ordered_json::parse(bytes.substr(8, n));
  std::vector<std::string> names;
  for (const auto& [name, info] : ordered.items()) {
    names.push_back(name);
    if (name == "__metadata__") continue;
    const uint64_t begin = info["data_offsets"][0];
    EXPECT_EQ(begin % tensors.at(name).element_size(), 0u) << name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"__metadata__", "a", "e", "aa", "b", "f", "g", "c", "h", "d"}));
}

TEST(Safetensors, ReadsAFileWrittenByHand) {
  // F16 1.0 = 0x3C00, -2.0 = 0xC000; BF16 1.0 = 0x3F80; spaces pad the header.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("g":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]},"__metadata__":{"format":"pt"}}   )";
  TempDir tmp("st");
  auto path = tmp / "hand.safetensors";
  write_bytes(path, raw_file(header, std::string("\x00\x3c\x00\xc0\x80\x3f", 6)));
  SafetensorsMetadata meta;
  auto t = read_safetensors(path.string(), &meta);
  EXPECT_EQ(t["h"].scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(t["h"].to(torch::kFloat32), torch::tensor({1.0f, -2.0f})));
  EXPECT_EQ(t["g"].scalar_type(), torch::kBFloat16);
  EXPECT_EQ(t["g"].sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(t["g"].to(torch::kFloat32).item<float>(), 1.0f);
  EXPECT_EQ(meta.at("format"), "pt");
}

TEST(Safetensors, RefusesMalformedFilesNamingFileAndTensor) {
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  EXPECT_TRUE(contains(error_for_bytes("abc"), "too short"));
  EXPECT_TRUE(contains(error_for_bytes(le64(1000) + "{}"), "header length 1000 runs past the end"));
  EXPECT_TRUE(contains(error_for_bytes(raw_file("{\"a\": [", "")), "not valid JSON"));
  EXPECT_TRUE(contains(error_for_bytes(raw_file("[1, 2]", "")), "not a JSON object"));

  auto msg = error_for_bytes(raw_file(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", "xx"));
  EXPECT_TRUE(contains(msg, "tensor 'w'") && contains(msg, "unsupported dtype 'Q4'") && contains(msg, "BF16")) << msg;
  // Strings of the file are quoted printably, and cut.
  const std::string hostile_dtype = R"("Q\u001b[2J)" + std::string(100, 'x') + "\"";
  msg = error_for_bytes(raw_file(R"({"w":{"dtype":)" + hostile_dtype + R"(,"shape":[2],"data_offsets":[0,2]}})", "xx"));
  EXPECT_TRUE(contains(msg, "unsupported dtype 'Q?[2J" + std::string(35, 'x') + "...'")) << msg;
  msg = error_for_bytes(raw_file(R"({"__metadata__":{"k\u0007":1}})", ""));
  EXPECT_TRUE(contains(msg, "__metadata__ entry 'k?' is not a string")) << msg;

  msg = error_for_bytes(raw_file(R"({"w":{)" + f32x2 + R"(,"data_offsets":[0,8]}})", std::string(6, '\0')));
  EXPECT_TRUE(contains(msg, "tensor 'w'") && contains(msg, "[0, 8] lie outside the 6-byte body")) << msg;

  msg = error_for_bytes(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_TRUE(contains(msg, "tensor 'w'") && contains(msg, "needs 12 bytes") && contains(msg, "hold 8")) << msg;

  msg = error_for_bytes(raw_file(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                     R"(,"data_offsets":[4,12]}})",
                                 std::string(12, '\0')));
  EXPECT_TRUE(contains(msg, "'a'") && contains(msg, "'b'") && contains(msg, "overlap")) << msg;

  msg = error_for_bytes(raw_file(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                     R"(,"data_offsets":[12,20]}})",
                                 std::string(20, '\0')));
  EXPECT_TRUE(contains(msg, "4 unused bytes before tensor 'b'")) << msg;

  msg = error_for_bytes(raw_file(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]}})", std::string(12, '\0')));
  EXPECT_TRUE(contains(msg, "4 unused bytes after the last tensor")) << msg;

  msg = error_for_bytes(raw_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""));
  EXPECT_TRUE(contains(msg, "tensor 'a'") && contains(msg, "not a list of sizes")) << msg;

  msg = error_for_bytes(raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", ""));
  EXPECT_TRUE(contains(msg, "tensor 'a'") && contains(msg, "data_offsets")) << msg;

  msg = error_for_bytes(raw_file(R"({"a":{)" + f32x2 + R"(,"data_offsets":[8,0]}})", std::string(8, '\0')));
  EXPECT_TRUE(contains(msg, "tensor 'a'") && contains(msg, "data_offsets [8, 0] are reversed")) << msg;

  // No bytes, but sides whose product overflows: LibTorch's own overflow
  // error (exit 1, no file named) before.
  msg = error_for_bytes(raw_file(
      R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}})", ""));
  EXPECT_TRUE(contains(msg, "tensor 'a'") && contains(msg, "more than 2^63 bytes")) << msg;

  // A name from the file is cut short in the message.
  const std::string long_name(100000, 'n');
  msg = error_for_bytes(raw_file(R"({")" + long_name + R"(":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", "xx"));
  EXPECT_LT(msg.size(), 400u);
  EXPECT_TRUE(contains(msg, std::string(100, 'n') + "...'")) << msg.substr(0, 300);

  TempDir tmp("st");
  EXPECT_TRUE(contains(read_error(tmp / "absent.safetensors"), "absent.safetensors"));
}

TEST(Safetensors, AShapeNestedAMillionDeepIsRefusedNotAStackOverflow) {
  // The error message once dump()ed the whole shape, and nlohmann's dump()
  // recurses once per level: a 2 MB header crashed the reader (SIGSEGV).
  // The parse itself now stops at the fourth level, before the rest of the
  // document is built.
  const int depth = 1000000;
  const std::string shape = std::string(depth, '[') + std::string(depth, ']');
  const auto msg = error_for_bytes(raw_file(R"({"a":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})", ""));
  EXPECT_TRUE(contains(msg, "header nests deeper than a safetensors header (3 levels)")) << msg;
  EXPECT_LT(msg.size(), 300u);
  // A shape one level too deep is refused the same way; one list of sizes
  // deep, with a non-number in it, by what it holds.
  EXPECT_TRUE(contains(error_for_bytes(raw_file(R"({"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})",
                                                std::string(4, '\0'))),
                       "header nests deeper than a safetensors header"));
  EXPECT_TRUE(contains(error_for_bytes(raw_file(R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})",
                                                std::string(4, '\0'))),
                       "shape is not a list of sizes (found \"1\")"));
}

// nlohmann keeps the last of two equal keys, other readers the first: a
// file with a name twice (or a field of one entry twice) reads as two
// different files, so it is refused wherever the key repeats.
TEST(Safetensors, AKeyTwiceInOneObjectIsRefused) {
  const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  const std::string body(4, '\0');
  EXPECT_TRUE(contains(error_for_bytes(raw_file(R"({"a":)" + entry + R"(,"a":)" + entry + "}", body)),
                       "'a' appears twice in one object of the header"));
  EXPECT_TRUE(contains(
      error_for_bytes(raw_file(R"({"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}})", body)),
      "'dtype' appears twice in one object of the header"));
  EXPECT_TRUE(contains(error_for_bytes(raw_file(R"({"__metadata__":{"k":"1","k":"2"},"a":)" + entry + "}", body)),
                       "'k' appears twice"));
  // The same key in two objects is no repeat.
  EXPECT_NO_THROW(decode_safetensors(raw_file(R"({"a":)" + entry + R"(,"b":{"dtype":"F32","shape":[0],)"
                                              R"("data_offsets":[4,4]}})",
                                              body),
                                     "ok"));
}

// ---------------------------------------------------------------------------
// Pretrained EfficientNet-B0 weights in torchvision naming.

ModelSpec efficientnet_spec(int classes) {
  ModelSpec s;
  s.type = "efficientnet";
  for (int i = 0; i < classes; ++i) s.class_names.push_back("c" + std::to_string(i));
  return s;
}

TensorMap state_of(Net& model) {
  TensorMap out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value().clone();
  return out;
}

// An ImageNet-like file: a 1000-class model whose every tensor, running
// statistics included, holds values a fresh model cannot have by chance.
TensorMap imagenet_like_state() {
  torch::manual_seed(11);
  auto source = build_model(efficientnet_spec(1000));
  TensorMap state = state_of(*source);
  for (auto& [name, t] : state) {
    if (t.is_floating_point()) {
      t.uniform_(0.5, 1.5);
    } else {
      t.fill_(1234);  // num_batches_tracked
    }
  }
  return state;
}

struct Pretrained : ::testing::Test {
  TempDir tmp{"pretrained"};
  TensorMap state = imagenet_like_state();
  std::string path = (tmp / "efficientnet_b0.safetensors").string();
  ModelSpec spec = efficientnet_spec(10);

  std::string load_error(const TensorMap& tensors) {
    write_safetensors(path, tensors);
    return load_error_of_file();
  }
  std::string load_error_of_file() {
    torch::manual_seed(5);
    auto model = build_model(spec);
    const auto before = state_of(*model);
    try {
      load_pretrained(*model, spec, path);
    } catch (const UserError& e) {
      // All or nothing: a refused file leaves the model as it was.
      for (const auto& [name, t] : state_of(*model)) EXPECT_TRUE(torch::equal(t, before.at(name))) << name;
      return e.what();
    }
    return "(no error)";
  }
};

TEST_F(Pretrained, BackboneLoadsBitExactlyAndTheThousandClassHeadIsReplaced) {
  write_safetensors(path, state);
  torch::manual_seed(5);
  auto model = build_model(spec);
  const auto fresh = state_of(*model);
  load_pretrained(*model, spec, path);
  int64_t loaded = 0;
  for (const auto& [name, t] : state_of(*model)) {
    if (name.rfind("classifier.", 0) == 0) {
      EXPECT_TRUE(torch::equal(t, fresh.at(name))) << name << " should keep its fresh initialisation";
      EXPECT_NE(t.sizes(), state.at(name).sizes());
    } else {
      EXPECT_TRUE(torch::equal(t, state.at(name))) << name;
      ++loaded;
    }
  }
  EXPECT_EQ(loaded, 358);  // 360 state-dict entries less the head's two
  EXPECT_EQ(model->named_buffers()["features.8.1.num_batches_tracked"].item<int64_t>(), 1234);
}

TEST_F(Pretrained, HalfPrecisionFilesAreWidenedAndMatchingHeadsLoad) {
  TensorMap half;
  for (const auto& [name, t] : state) half[name] = t.is_floating_point() ? t.to(torch::kFloat16) : t;
  // A ten-class head in the file fits the model, so it is loaded too.
  half["classifier.1.weight"] = torch::full({10, 1280}, 0.25).to(torch::kFloat16);
  half["classifier.1.bias"] = torch::full({10}, -1.0).to(torch::kFloat16);
  write_safetensors(path, half);
  auto model = build_model(spec);
  load_pretrained(*model, spec, path);
  for (const auto& [name, t] : state_of(*model)) {
    EXPECT_EQ(t.scalar_type(), name.find("num_batches_tracked") == std::string::npos ? torch::kFloat32 : torch::kInt64);
    EXPECT_TRUE(torch::equal(t, half.at(name).to(t.scalar_type()))) << name;
  }
}

TEST_F(Pretrained, HeadlessFilesAndFilesWithoutStepCountersLoad) {
  TensorMap trimmed;
  for (const auto& [name, t] : state) {
    if (name.rfind("classifier.", 0) != 0 && name.find("num_batches_tracked") == std::string::npos) trimmed[name] = t;
  }
  EXPECT_EQ(load_error(trimmed), "(no error)");
}

TEST_F(Pretrained, WrongShapeIsRefused) {
  state["features.0.0.weight"] = torch::zeros({16, 3, 3, 3});
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "pretrained weights " + path + " do not fit efficientnet")) << msg;
  EXPECT_TRUE(contains(msg, "wrong shape: features.0.0.weight [16, 3, 3, 3] (model [32, 3, 3, 3])")) << msg;
}

TEST_F(Pretrained, MissingTensorIsRefused) {
  state.erase("features.3.1.block.1.1.running_var");
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "missing: features.3.1.block.1.1.running_var")) << msg;
  EXPECT_FALSE(contains(msg, "unexpected")) << msg;
}

TEST_F(Pretrained, UnexpectedTensorIsRefused) {
  state["features.9.0.weight"] = torch::zeros({2});
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "unexpected: features.9.0.weight")) << msg;
}

TEST_F(Pretrained, AllFaultsAreListedInOneMessage) {
  state.erase("features.1.0.block.1.fc1.bias");
  state.erase("features.1.0.block.1.fc2.bias");
  state["extra.weight"] = torch::zeros({1});
  state["features.8.0.weight"] = torch::zeros({1280, 320, 1, 2});
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "missing: features.1.0.block.1.fc1.bias, features.1.0.block.1.fc2.bias; "
                            "unexpected: extra.weight; wrong shape: features.8.0.weight [1280, 320, 1, 2]"))
      << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
}

TEST_F(Pretrained, TruncatedBodyIsRefused) {
  const std::string bytes = encode_safetensors(state);
  write_bytes(path, bytes.substr(0, bytes.size() - 100));
  auto msg = load_error_of_file();
  EXPECT_TRUE(contains(msg, path) && contains(msg, "lie outside the") && contains(msg, "truncated")) << msg;
}

TEST_F(Pretrained, HeaderThatLiesAboutOffsetsIsRefused) {
  auto [header, body] = split(encode_safetensors(state));
  auto& offsets = header["features.0.0.weight"]["data_offsets"];
  offsets = json::array({offsets[0].get<uint64_t>() + 4, offsets[1].get<uint64_t>() + 4});
  write_bytes(path, raw_file(header.dump(), body));
  auto msg = load_error_of_file();
  EXPECT_TRUE(contains(msg, path) && contains(msg, "features.0.0.weight")) << msg;
}

// Integer tensors would load as whole numbers (mostly 0): no weights at all.
TEST_F(Pretrained, IntegerTensorsAreRefused) {
  state["features.0.0.weight"] = state["features.0.0.weight"].to(torch::kInt64);
  state["features.8.1.running_var"] = state["features.8.1.running_var"].to(torch::kUInt8);
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "not floating point: features.0.0.weight Long, features.8.1.running_var Byte")) << msg;
}

// The other way is harmless: a step counter exported as float loads.
TEST_F(Pretrained, FloatStepCountersLoad) {
  state["features.8.1.num_batches_tracked"] = state["features.8.1.num_batches_tracked"].to(torch::kFloat32);
  EXPECT_EQ(load_error(state), "(no error)");
}

TEST_F(Pretrained, NanOrInfiniteValuesAreRefused) {
  state["features.1.0.block.0.0.weight"][0][0][0][0] = std::nan("");
  state["classifier.1.weight"] = torch::zeros({10, 1280});
  state["classifier.1.bias"] = torch::full({10}, INFINITY);
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "NaN or infinite values in: classifier.1.bias, features.1.0.block.0.0.weight")) << msg;
}

// A head that fits in part is a broken file, not an ImageNet head to
// replace (the fresh head was used silently).
TEST_F(Pretrained, AHeadThatFitsOnlyInPartIsRefused) {
  state["classifier.1.weight"] = torch::zeros({10, 1280});
  state["classifier.1.bias"] = torch::zeros({9});
  auto msg = load_error(state);
  EXPECT_TRUE(contains(msg, "wrong shape: classifier.1.bias [9] (model [10])")) << msg;
}

TEST_F(Pretrained, SaysWhatItLoadedAndWhetherTheHeadIsNew) {
  write_safetensors(path, state);
  auto model = build_model(spec);
  EXPECT_EQ(load_pretrained(*model, spec, path),
            "Loaded 358 tensors from " + path + "; a new 10-class classifier replaces the file's 1000-class one");
  state["classifier.1.weight"] = torch::zeros({10, 1280});
  state["classifier.1.bias"] = torch::zeros({10});
  write_safetensors(path, state);
  EXPECT_EQ(load_pretrained(*model, spec, path), "Loaded 360 tensors from " + path);
}

TEST_F(Pretrained, OnlyEfficientNetTakesPretrainedWeights) {
  write_safetensors(path, state);
  ModelSpec resnet = spec;
  resnet.type = "resnet";
  auto model = build_model(resnet);
  try {
    load_pretrained(*model, resnet, path);
    FAIL() << "accepted";
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "efficientnet")) << e.what();
  }
}

}  // namespace
}  // namespace cifar
