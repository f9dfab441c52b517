// The .pth reader on files Python's torch.save wrote (pth_fixtures.py): a
// torchvision state dict read to the last bit, and hostile files refused
// by name.
#include "checkpoint/pth_reader.h"

#include <caffe2/serialize/inline_container.h>

#include <map>

#include "common/error.h"
#include "models/efficientnet.h"
#include "models/registry.h"
#include "pth_fixtures.h"
#include "test_util.h"
#include "checkpoint/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using namespace std::string_literals;
using testing::PthFixtures;

std::string python_dtype(torch::ScalarType t) {
  static const std::map<torch::ScalarType, std::string> names = {
      {torch::kFloat32, "float32"},   {torch::kFloat64, "float64"}, {torch::kFloat16, "float16"},
      {torch::kBFloat16, "bfloat16"}, {torch::kInt64, "int64"},     {torch::kInt32, "int32"},
      {torch::kInt16, "int16"},       {torch::kInt8, "int8"},       {torch::kUInt8, "uint8"},
      {torch::kBool, "bool"}};
  return names.at(t);
}

// Every tensor torch.save wrote, with its dtype, shape and bytes.
void expect_as_saved(const TensorMap& tensors, const nlohmann::json& expected) {
  ASSERT_EQ(tensors.size(), expected.size());
  for (const auto& [name, want] : expected.items()) {
    ASSERT_TRUE(tensors.count(name)) << name;
    const auto& t = tensors.at(name);
    EXPECT_EQ(python_dtype(t.scalar_type()), want["dtype"]) << name;
    EXPECT_EQ(t.sizes().vec(), want["shape"].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(sha256_hex(testing::tensor_bytes(t)), want["sha256"]) << name;
  }
}

std::string refusal(const fs::path& file) {
  try {
    read_pth(file.string());
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.exit_code(), kExitBadInput) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
    EXPECT_NE(what.find(file.string()), std::string::npos) << "names the file: " << what;
    return what;
  }
  ADD_FAILURE() << file << " was read";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Pickles written by hand, for what no honest writer makes: a .pth zip
// around `pickle`, laid out by the writer torch.save uses.
std::string pth_around(const std::string& pickle, const std::map<std::string, std::string>& storages = {}) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    for (const auto& [key, data] : storages) writer.writeRecord("data/" + key, data.data(), data.size());
    writer.writeEndOfFile();
  }
  return bytes;
}

// BINUNICODE
std::string unicode(const std::string& s) {
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + s;
}

std::string refusal_of_pickle(const std::string& pickle, const std::map<std::string, std::string>& storages = {}) {
  testing::TempDir tmp("pth");
  testing::write_bytes(tmp / "hand.pth", pth_around(pickle, storages));
  return refusal(tmp / "hand.pth");
}

TEST(PthReader, ReadsTorchvisionsStateDictBitExactly) {
  const auto& fx = PthFixtures::get();
  const TensorMap tensors = read_pth((fx / "efficientnet_b0.pth").string());
  expect_as_saved(tensors, fx.expected("efficientnet_b0.pth"));
  EXPECT_EQ(tensors.size(), 360u);
  // And its names are ours: the backbone loads, the 1000-class head is replaced.
  ModelSpec spec;
  spec.type = "efficientnet";
  spec.class_names = std::vector<std::string>(10, "c");
  auto model = build_model(spec);
  EXPECT_EQ(load_pretrained(*model, spec, tensors, "b0.pth"),
            "Loaded 358 tensors from b0.pth; a new 10-class classifier replaces the file's 1000-class one");
  EXPECT_TRUE(torch::equal(model->named_parameters()["features.4.2.block.3.0.weight"],
                           tensors.at("features.4.2.block.3.0.weight")));
}

// Views of one storage (a transpose, a row at an offset), a Parameter
// (_rebuild_parameter), a scalar, an empty tensor and every dtype, at pickle
// protocols 2 (torch.save's default) and 4.
TEST(PthReader, ReadsViewsParametersAndEveryDtypeAtProtocols2And4) {
  const auto& fx = PthFixtures::get();
  for (const char* file : {"tiny.pth", "protocol4.pth"}) {
    SCOPED_TRACE(file);
    const TensorMap tensors = read_pth((fx / file).string());
    expect_as_saved(tensors, fx.expected(file));
    EXPECT_EQ(tensors.at("conv.weight_t").strides().vec(), (std::vector<int64_t>{1, 4}));
    EXPECT_TRUE(torch::equal(tensors.at("row"), torch::tensor({4.0f, 5.0f, 6.0f, 7.0f})));
  }
}

TEST(PthReader, RefusesAGlobalSuchAsOsSystemByName) {
  const auto& fx = PthFixtures::get();
  const std::string msg = refusal(fx / "evil.pth");
  EXPECT_TRUE(contains(msg, "names the global posix.system, which a state dict never does")) << msg;
  EXPECT_FALSE(fs::exists(fx / "evil_ran")) << "the pickle's call ran";
}

TEST(PthReader, RefusesAnOpcodeAStateDictNeverHolds) {
  const std::string msg = refusal(PthFixtures::get() / "list.pth");
  EXPECT_TRUE(contains(msg, "holds pickle opcode EMPTY_LIST (0x5d) at byte")) << msg;
}

TEST(PthReader, RefusesAStorageLargerThanItsRecord) {
  const std::string msg = refusal(PthFixtures::get() / "short_storage.pth");
  EXPECT_TRUE(contains(msg, "declares storage tiny/data/0 of 12 x 4 bytes, but its record holds 44 bytes")) << msg;
}

TEST(PthReader, RefusesTruncatedLegacyAndForeignFiles) {
  const auto& fx = PthFixtures::get();
  EXPECT_TRUE(contains(refusal(fx / "truncated.pth"), "is corrupt")) << refusal(fx / "truncated.pth");
  const std::string legacy = refusal(fx / "legacy.pth");
  EXPECT_TRUE(contains(legacy, "pre-1.6 torch.save format") && contains(legacy, "torch.save(torch.load(F), F)"))
      << legacy;
  testing::TempDir tmp("pth");
  testing::write_bytes(tmp / "text.pth", "not a zip at all");
  EXPECT_TRUE(contains(refusal(tmp / "text.pth"), "not a PyTorch .pth file"));
}

// torch.save stores records uncompressed; deflated ones that expand past
// the file's size would be a zip bomb in memory.
TEST(PthReader, RefusesRecordsThatExpandPastTheFile) {
  const std::string msg = refusal(PthFixtures::get() / "bomb.pth");
  EXPECT_TRUE(contains(msg, "the records expand past the size of the whole file")) << msg;
}

// A record whose bytes changed after torch.save wrote it: libarchive checks
// each record's CRC-32, which LibTorch's own reader skips.
TEST(PthReader, RefusesARecordWhoseCrcFails) {
  const auto& fx = PthFixtures::get();
  std::string bytes = read_file(fx / "tiny.pth");
  const std::string twelve_floats = testing::tensor_bytes(torch::arange(12, torch::kFloat32));
  const size_t at = bytes.find(twelve_floats);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x40;
  testing::TempDir tmp("pth");
  testing::write_bytes(tmp / "flipped.pth", bytes);
  const std::string msg = refusal(tmp / "flipped.pth");
  EXPECT_TRUE(contains(msg, "is corrupt: record tiny/data/0")) << msg;
}

// Tuples nested a million deep: destroying them recursed once per level
// and overflowed the stack.
TEST(PthReader, RefusesTuplesNestedPastTheDepthAStateDictNeeds) {
  const std::string msg = refusal_of_pickle("\x80\x02K\x01"s + std::string(1000000, '\x85') + ".");
  EXPECT_TRUE(contains(msg, "nests tuples more than 32 deep")) << msg;
}

// A dict made to hold itself (a cycle of shared pointers, never freed):
// dicts keep no containers, so it is a dict of a container, refused.
TEST(PthReader, RefusesADictThatHoldsItself) {
  const std::string msg = refusal_of_pickle("\x80\x02}q\x00"s + unicode("w") + "h\x00s."s);
  EXPECT_TRUE(contains(msg, "maps a string to a container: not a state dict")) << msg;
}

// 2^40 elements over one float (stride 0): within the storage, but no
// weight is saved so, and copying it would take 8 TB.
TEST(PthReader, RefusesAViewWithMoreElementsThanItsStorage) {
  const std::string tensor = "ctorch._utils\n_rebuild_tensor_v2\n(("s + unicode("storage") + "ctorch\nFloatStorage\n"s +
                             unicode("0") + unicode("cpu") + "K\x01tQK\x00"s +
                             "\x8a\x06\x00\x00\x00\x00\x00\x01\x85K\x00\x85\x89"s + "ccollections\nOrderedDict\n)RtR"s;
  const std::string msg =
      refusal_of_pickle("\x80\x02}("s + unicode("w") + tensor + "u."s, {{"0", std::string(4, '\0')}});
  EXPECT_TRUE(contains(msg, "has a tensor of 1099511627776 elements over a storage of 1 (overlapping strides)")) << msg;
}

// A cifar10 checkpoint is a zip too: it is named for what it is.
TEST(PthReader, SaysACheckpointIsNotAWeightsFile) {
  testing::TempDir tmp("pth");
  ModelSpec spec;
  spec.type = "cnn";
  spec.depth = 0;
  spec.class_names = std::vector<std::string>(10, "c");
  auto model = build_model(spec);
  save_checkpoint((tmp / "model.pt").string(), *model, spec, nullptr, nlohmann::json::object());
  const std::string msg = refusal(tmp / "model.pt");
  EXPECT_TRUE(contains(msg, "is a LibTorch archive") && contains(msg, "--load-model")) << msg;
}

}  // namespace
}  // namespace cifar
