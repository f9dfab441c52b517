// `cifar10 export --load-model CKPT --format safetensors OUT`: an
// EfficientNet's file starts a new run with the same logits; every file is
// read back by an independent reader (Python's json, struct and numpy)
// that checks Hugging Face's layout, the metadata and the values.
#include "checkpoint/export.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "config/cli.h"
#include "data/archive.h"
#include "models/efficientnet.h"
#include "models/registry.h"
#include "pth_fixtures.h"
#include "test_util.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::run_cifar10;
using testing::TempDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Reads a .safetensors file with nothing of ours: the header length, the
// JSON header in file order, the body through numpy. Checks the layout
// Hugging Face's writer makes (dtype alignment descending, then name;
// offsets tiling the body, each aligned to its dtype; the header padded
// with spaces to 8 bytes; __metadata__ first, all strings) and each
// tensor's shape, bytes and sum against the expectations file.
const char* kIndependentReader = R"PY(
import hashlib, json, struct, sys
import numpy as np
data = open(sys.argv[1], 'rb').read()
want = json.load(open(sys.argv[2]))
(n,) = struct.unpack('<Q', data[:8])
assert n % 8 == 0, 'header length %d is not a multiple of 8' % n
text = data[8:8 + n].decode('utf-8')
assert 0 <= len(text) - len(text.rstrip(' ')) < 8, 'padding'
header = json.loads(text, object_pairs_hook=lambda pairs: pairs)
assert header[0][0] == '__metadata__', 'metadata first: %s' % header[0][0]
meta = dict(header[0][1])
assert all(isinstance(v, str) for v in meta.values()), 'metadata values are strings'
assert meta['format'] == 'pt'
assert json.loads(meta['cifar10.spec']) == want['spec'], 'spec'
assert json.loads(meta['cifar10.config'])['model-type'] == want['model_type'], 'config'
assert meta['cifar10.names'] == want['names'], 'names'
ORDER = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']
NUMPY = {'F64': '<f8', 'F32': '<f4', 'F16': '<f2', 'I64': '<i8', 'I32': '<i4', 'I16': '<i2', 'I8': 'i1', 'U8': 'u1', 'BOOL': '?'}
entries = [(name, dict(info)) for name, info in header[1:]]
order = sorted(entries, key=lambda e: (-ORDER.index(e[1]['dtype']), e[0]))
assert [e[0] for e in entries] == [e[0] for e in order], 'tensors in Hugging Face order'
assert sorted(name for name, _ in entries) == sorted(want['tensors']), 'names'
body = data[8 + n:]
pos = 0
for name, info in entries:
    begin, end = info['data_offsets']
    assert begin == pos, '%s starts at %d, not %d' % (name, begin, pos)
    dtype = np.dtype(NUMPY[info['dtype']])
    assert begin % dtype.itemsize == 0, '%s is not aligned' % name
    values = np.frombuffer(body[begin:end], dtype=dtype).reshape(info['shape'])
    w = want['tensors'][name]
    assert list(values.shape) == w['shape'], name
    assert hashlib.sha256(values.tobytes()).hexdigest() == w['sha256'], name
    total = float(values.astype(np.float64).sum())
    assert abs(total - w['sum']) <= 1e-6 * max(1.0, abs(w['sum'])), '%s sums to %r, not %r' % (name, total, w['sum'])
    pos = end
assert pos == len(body), 'the body holds %d bytes past the last tensor' % (len(body) - pos)
print('independent reader: ok,', len(entries), 'tensors')
)PY";

std::string run_python(const std::string& script, const std::vector<std::string>& args);

// Runs the independent reader on `file` against `model`'s tensors.
void expect_independent_reader_agrees(const fs::path& file, Net& model, const ModelSpec& spec,
                                      const std::string& names) {
  TempDir tmp("reader");
  json want{{"spec", spec_to_json(spec)}, {"model_type", spec.type}, {"names", names}, {"tensors", json::object()}};
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    want["tensors"][name] = {{"shape", t.sizes().vec()},
                             {"sha256", sha256_hex(testing::tensor_bytes(t))},
                             {"sum", t.detach().to(torch::kFloat64).sum().item<double>()}};
  };
  for (const auto& p : model.named_parameters()) add(p.key(), p.value());
  for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  testing::write_bytes(tmp / "want.json", want.dump());
  const std::string output = run_python(kIndependentReader, {file.string(), (tmp / "want.json").string()});
  EXPECT_TRUE(contains(output, "independent reader: ok")) << output;
}

// torchvision's own efficientnet_b0 takes the exported file with
// load_state_dict(strict=True) and, with the two strides our 32-pixel
// model runs at 1 (models/efficientnet.h), gives our logits. The file is
// read without the safetensors package (Debian has none): json, struct,
// numpy.
const char* kTorchvisionCheck = R"PY(
import json, struct, sys
import numpy as np, torch, torchvision
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
header = json.loads(data[8:8 + n])
header.pop('__metadata__')
NUMPY = {'F32': '<f4', 'I64': '<i8'}
state = {}
for name, info in header.items():
    b, e = info['data_offsets']
    values = np.frombuffer(data[8 + n + b:8 + n + e], dtype=NUMPY[info['dtype']]).reshape(info['shape'])
    state[name] = torch.from_numpy(values.copy())
model = torchvision.models.efficientnet_b0(num_classes=10)
model.load_state_dict(state, strict=True)
model.features[0][0].stride = (1, 1)
model.features[2][0].block[1][0].stride = (1, 1)
model.eval()
x = torch.from_numpy(np.fromfile(sys.argv[2], dtype='<f4').reshape(-1, 3, 32, 32))
want = torch.from_numpy(np.fromfile(sys.argv[3], dtype='<f4').reshape(x.shape[0], 10))
with torch.no_grad():
    got = model(x)
diff = (got - want).abs().max().item()
assert diff < 1e-4, 'logits differ by %g' % diff
print('torchvision: same logits, max difference %g' % diff)
)PY";

std::string run_python(const std::string& script, const std::vector<std::string>& args) {
  TempDir tmp("python");
  testing::write_bytes(tmp / "check.py", script);
  std::string cmd = "/usr/bin/python3 " + (tmp / "check.py").string();
  for (const auto& a : args) cmd += " " + a;
  std::string output;
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return "cannot run " + cmd;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  return status == 0 ? output : output + " (exit status " + std::to_string(status) + ")";
}

std::vector<std::string> export_args(const fs::path& checkpoint, const fs::path& out) {
  return {"export", "--load-model", checkpoint.string(), "--format", "safetensors", out.string()};
}

json read_json(const fs::path& p) { return json::parse(read_file(p)); }

TEST(Export, AnEfficientNetStartsANewRunWithTheSameLogits) {
  TempDir tmp("export");
  const std::vector<std::string> data{
      "--data-dir", testing::data_root().string(), "--test-limit", "100", "--skip-visualization", "--seed", "3",
      "--validation-size", "32", "--calibration", "none"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), data.begin(), data.end());
    return args;
  };
  auto trained = run_cifar10(
      with({"--model-type", "efficientnet", "--pretrained-weights", "none", "--epochs", "1", "--train-limit", "64",
            "--batch-size", "32", "--output-dir", (tmp / "trained").string()}));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const fs::path checkpoint = tmp / "trained/checkpoints/best_model.pt";
  const fs::path file = tmp / "b0.safetensors";
  auto exported = run_cifar10(export_args(checkpoint, file));
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_TRUE(contains(exported.output, "Exported 360 tensors of efficientnet (torchvision names)")) << exported.output;

  // In process: the checkpoint's model and one built from the file agree
  // to the bit.
  const LoadedModel loaded = load_model(checkpoint.string(), torch::kCPU);
  auto rebuilt = build_model(loaded.spec);
  EXPECT_EQ(load_pretrained(*rebuilt, loaded.spec, read_safetensors(file.string()), file.string()),
            "Loaded 360 tensors from " + file.string());
  rebuilt->eval();
  torch::manual_seed(1);
  const auto x = torch::randn({8, 3, 32, 32});
  torch::NoGradGuard no_grad;
  const auto logits = loaded.model->forward(x);
  EXPECT_TRUE(torch::equal(logits, rebuilt->forward(x)));
  expect_independent_reader_agrees(file, *loaded.model, loaded.spec, "torchvision");
  testing::write_bytes(tmp / "x.f32", testing::tensor_bytes(x));
  testing::write_bytes(tmp / "logits.f32", testing::tensor_bytes(logits));
  const std::string torchvision =
      run_python(kTorchvisionCheck, {file.string(), (tmp / "x.f32").string(), (tmp / "logits.f32").string()});
  EXPECT_TRUE(contains(torchvision, "torchvision: same logits")) << torchvision;

  // Through the binary: a run from the file evaluates as the checkpoint does.
  auto from_file = run_cifar10(with({"--model-type", "efficientnet", "--pretrained-weights", file.string(), "--epochs",
                                     "0", "--output-dir", (tmp / "from_file").string()}));
  ASSERT_EQ(from_file.exit_code, 0) << from_file.output;
  auto evaluated = run_cifar10(
      with({"--skip-training", "--load-model", checkpoint.string(), "--output-dir", (tmp / "evaluated").string()}));
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  const json a = read_json(tmp / "from_file/results/inference_results.json");
  const json b = read_json(tmp / "evaluated/results/inference_results.json");
  EXPECT_EQ(a["loss"], b["loss"]);
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
  EXPECT_EQ(a["confusion_matrix"], b["confusion_matrix"]);
}

// Other models keep our module names; the file reads back to the bit.
TEST(Export, OtherModelsRoundTripUnderTheirOwnNames) {
  TempDir tmp("export");
  for (const char* type : {"resnet", "cnn", "fast"}) {
    SCOPED_TRACE(type);
    ModelConfig config;
    config.model_type = type;
    config.depth = std::string(type) == "resnet" ? 20 : 0;
    const ModelSpec spec =
        make_spec(config, std::vector<std::string>(10, "class"), {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
    torch::manual_seed(4);
    auto model = build_model(spec);
    Config run;
    run.model = config;
    const fs::path checkpoint = tmp / (std::string(type) + ".pt");
    save_checkpoint(checkpoint.string(), *model, spec, nullptr, {{"config", config_to_json(run)}});
    const fs::path file = tmp / (std::string(type) + ".safetensors");
    auto r = run_cifar10(export_args(checkpoint, file));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    SafetensorsMetadata metadata;
    const TensorMap back = read_safetensors(file.string(), &metadata);
    size_t count = 0;
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(back.count(p.key())) << p.key();
      EXPECT_TRUE(torch::equal(back.at(p.key()), p.value())) << p.key();
      ++count;
    }
    for (const auto& b : model->named_buffers()) {
      ASSERT_TRUE(back.count(b.key())) << b.key();
      EXPECT_TRUE(torch::equal(back.at(b.key()), b.value())) << b.key();
      ++count;
    }
    EXPECT_EQ(back.size(), count);
    EXPECT_EQ(metadata.at("cifar10.names"), "cifar10");
    const ModelSpec saved = spec_from_json(json::parse(metadata.at("cifar10.spec")));
    EXPECT_EQ(saved.type, spec.type);
    EXPECT_EQ(saved.depth, spec.depth);
    EXPECT_EQ(json::parse(metadata.at("cifar10.config"))["model-type"], type);
    expect_independent_reader_agrees(file, *model, spec, "cifar10");
  }
}

TEST(Export, BadInputsAreOneLineAndWriteNothing) {
  TempDir tmp("export");
  ModelSpec spec;
  spec.type = "cnn";
  spec.depth = 0;
  spec.class_names = std::vector<std::string>(10, "c");
  auto model = build_model(spec);
  const fs::path checkpoint = tmp / "model.pt";
  save_checkpoint(checkpoint.string(), *model, spec, nullptr, json::object());
  const fs::path out = tmp / "out.safetensors";
  auto error_of = [](const std::vector<std::string>& args) {
    auto r = run_cifar10(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line: " << r.output;
    return r.output;
  };
  std::string e = error_of(export_args(tmp / "missing.pt", out));
  EXPECT_TRUE(contains(e, (tmp / "missing.pt").string())) << e;
  e = error_of({"export", "--load-model", checkpoint.string(), "--format", "onnx", out.string()});
  EXPECT_TRUE(contains(e, "invalid --format 'onnx': expected safetensors")) << e;
  e = error_of(export_args(checkpoint, tmp / "no-such-folder/out.safetensors"));
  EXPECT_TRUE(contains(e, "folder " + (tmp / "no-such-folder").string() + " does not exist")) << e;
  e = error_of(export_args(checkpoint, "/proc/self/out.safetensors"));
  EXPECT_TRUE(contains(e, "cannot write /proc/self/out.safetensors")) << e;
  e = error_of(export_args(checkpoint, tmp.path()));
  EXPECT_TRUE(contains(e, "it is a folder")) << e;
  e = error_of(export_args(checkpoint, checkpoint));
  EXPECT_TRUE(contains(e, "it is the checkpoint being exported")) << e;
  testing::write_bytes(tmp / "weights.h5", "HDF5 from Keras");
  e = error_of(export_args(tmp / "weights.h5", out));
  EXPECT_TRUE(contains(e, "weights.h5")) << e;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(read_file(checkpoint).size(), fs::file_size(checkpoint));  // untouched, still readable
  EXPECT_NO_THROW(load_model(checkpoint.string(), torch::kCPU));
}

}  // namespace
}  // namespace cifar
