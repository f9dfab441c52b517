// Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/:
// small valid inputs (a few KB each) that show libFuzzer each format's
// shape. Deterministic, so re-running it changes nothing; scripts/fuzz.sh
// runs it only when a corpus folder is missing.
//   make_corpus <corpus-dir>
#include <caffe2/serialize/inline_container.h>
#include <stb/stb_image_write.h>

#include <fstream>
#include <iostream>

#include "common/atomic_file.h"
#include "config/cli.h"
#include "data/cifar_reader.h"
#include "models/safetensors.h"
#include "reporting/tensorboard.h"
#include "training/callbacks/csv_logger.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/history.h"
#include "training/callbacks/model_checkpoint.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "training/callbacks/tensorboard_callback.h"
#include "training/checkpoint.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;

void put(const fs::path& file, const std::string& bytes) {
  write_file_atomic(file, bytes);
  std::cout << file.string() << " (" << bytes.size() << " bytes)\n";
}

std::string records(int n) {
  std::string out;
  for (int r = 0; r < n; ++r) {
    out.push_back(static_cast<char>(r % 10));
    for (int i = 0; i < 3072; ++i) out.push_back(static_cast<char>((i * 7 + r * 13) & 0xFF));
  }
  return out;
}

const std::vector<std::string> kClasses{"airplane", "automobile", "bird", "cat", "deer",
                                        "dog",      "frog",       "horse", "ship", "truck"};

void cifar_batch(const fs::path& dir) {
  put(dir / "one_record.bin", records(1));
  put(dir / "two_records.bin", records(2));
  std::string meta;
  for (const auto& c : kClasses) meta += c + "\n";
  put(dir / "batches.meta.txt", meta + "\n");
}

void safetensors(const fs::path& dir) {
  put(dir / "two_tensors.safetensors",
      encode_safetensors({{"conv.weight", torch::arange(6, torch::kFloat32).reshape({2, 3})},
                          {"steps", torch::tensor({1, 2, 3, 4}, torch::kInt64)}},
                         {{"format", "pt"}}));
  put(dir / "half.safetensors", encode_safetensors({{"h", torch::ones({3}, torch::kBFloat16)},
                                                    {"f", torch::zeros({2, 0}, torch::kFloat16)},
                                                    {"b", torch::ones({1}, torch::kBool)}}));
  put(dir / "empty.safetensors", encode_safetensors({}));
}

// A net of one Linear layer under a CNN spec: the file has every record a
// real checkpoint has (meta, model, optimizer) at a few KB instead of 16 MB.
struct TinyNet : Net {
  TinyNet() { fc = register_module("fc", torch::nn::Linear(2, 2)); }
  torch::Tensor forward(torch::Tensor x) override { return fc(x); }
  std::string head_name() const override { return "fc"; }
  torch::nn::Linear fc{nullptr};
};

nlohmann::json run_meta(const ModelSpec& spec) {
  // The shape Trainer::run_state() writes, mid-epoch, with every callback.
  const Monitor monitor{"val_loss", "auto", 0.0};
  EarlyStopping::Options es;
  es.monitor = monitor;
  nlohmann::json callbacks = nlohmann::json::object();
  const std::vector<std::shared_ptr<Callback>> cbs{
      std::make_shared<ReduceLROnPlateau>(ReduceLROnPlateau::Options{}), std::make_shared<EarlyStopping>(es),
      std::make_shared<History>(), std::make_shared<CSVLogger>("logs"),
      std::make_shared<TensorBoardCallback>("logs"),
      std::make_shared<ModelCheckpoint>("best_model.pt", monitor, true)};
  for (const auto& cb : cbs) callbacks[cb->name()] = cb->state();
  callbacks["csv_logger"] = {{"file", "training_log_20260101_000000.csv"}, {"columns", {"accuracy", "loss"}}};
  callbacks["history"] = nlohmann::json::array({{{"epoch", 0}, {"loss", 2.1}, {"val_loss", "inf"}}});
  Config config;
  config.model.model_type = "cnn";
  return {{"format", kCheckpointFormat}, {"version", kCheckpointVersion}, {"spec", spec_to_json(spec)},
          {"config", config_to_json(config)}, {"epoch", 1}, {"step_in_epoch", 3}, {"global_step", 11},
          {"learning_rate", 0.001}, {"world_size", 1}, {"callbacks", callbacks},
          {"partial", {1.5, 20.0, 50.0, 96.0}}};
}

void checkpoint(const fs::path& dir) {
  ModelSpec spec;
  spec.type = "cnn";
  spec.depth = 0;
  spec.class_names = kClasses;
  spec.mean = {0.49, 0.48, 0.45};
  spec.std = {0.25, 0.24, 0.26};
  torch::manual_seed(1);
  TinyNet net;
  torch::optim::Adam adam(net.parameters());
  net.forward(torch::ones({1, 2})).sum().backward();
  adam.step();
  const fs::path file = dir / "tiny_file.pt.tmp";
  save_checkpoint(file.string(), net, spec, &adam, run_meta(spec));
  put(dir / "tiny_file.pt", std::string(1, '\0') + read_file(file));  // even first byte: a whole file
  fs::remove(file);
  put(dir / "meta.json", std::string(1, '\1') + run_meta(spec).dump());  // odd: the meta record
  auto newer = run_meta(spec);
  newer["version"] = 99;
  put(dir / "meta_v99.json", std::string(1, '\1') + newer.dump());
}

void config(const fs::path& dir) {
  put(dir / "config.json",
      R"({"model-type": "cnn", "epochs": 3, "batch_size": 64, "learning-rate": 0.01, "flip": false, "seed": 7})");
  put(dir / "config.yaml",
      "model_type: resnet\ndepth: 20\nepochs: 2\noptimizer: sgd\nnesterov: true\nlr-schedule: cosine\n"
      "warmup-epochs: 1\nrotation: 0\ndata_dir: /tmp/data\n# a comment\n");
  put(dir / "empty.yaml", "");
}

std::string png_bytes(int w, int h, int channels) {
  std::vector<uint8_t> pixels(static_cast<size_t>(w * h * channels));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37);
  std::string out;
  auto append = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); };
  stbi_write_png_to_func(append, &out, w, h, channels, pixels.data(), w * channels);
  return out;
}

void image(const fs::path& dir) {
  std::vector<uint8_t> rgb(8 * 6 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 11);
  auto append = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); };
  std::string jpg, bmp;
  stbi_write_jpg_to_func(append, &jpg, 8, 6, 3, rgb.data(), 90);
  stbi_write_bmp_to_func(append, &bmp, 8, 6, 3, rgb.data());
  put(dir / "rgb.png", png_bytes(8, 6, 3));
  put(dir / "gray.png", png_bytes(5, 4, 1));
  put(dir / "rgba.png", png_bytes(4, 4, 4));
  put(dir / "rgb.jpg", jpg);
  put(dir / "rgb.bmp", bmp);
}

void tensorboard(const fs::path& dir) {
  const fs::path logs = dir / "tmp_logs";
  {
    TensorBoardWriter w(logs);
    w.add_scalar("epoch_loss", 1.25, 0);
    w.add_histogram("conv.weight", torch::linspace(-1, 1, 16), 0);
    w.add_image("samples", torch::full({3, 2, 2}, 200, torch::kUInt8), 0);
    w.add_session_start(1);
  }
  const fs::path file = list_event_files(logs).at(0);
  put(dir / "events.tfevents", std::string(1, '\0') + read_file(file));  // even: a whole file
  // odd: length-prefixed Event payloads, framed by the target.
  std::string framed(1, '\1');
  for (const auto& e : read_tensorboard_events(file)) {
    const std::string payload = e.SerializeAsString();
    if (payload.size() > 255) continue;
    framed += static_cast<char>(payload.size()) + payload;
  }
  put(dir / "payloads.bin", framed);
  remove_tree(logs);
}

// The data.pkl that torch.save (PyTorch 1.13, pickle protocol 2) writes for
//   sd = OrderedDict(conv.weight=arange(6.).reshape(2, 3), conv.weight_t=<its
//   transpose>, steps=tensor(7)); sd._metadata = {"conv": {"version": 1}}
// byte for byte: every opcode and global a state dict uses, a view sharing
// a storage, and the BUILD of _metadata.
const char kStateDictPickle[] =
    "\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x4f\x72\x64\x65\x72\x65\x64\x44\x69"
    "\x63\x74\x0a\x71\x00\x29\x52\x71\x01\x28\x58\x0b\x00\x00\x00\x63\x6f\x6e\x76\x2e\x77\x65\x69\x67"
    "\x68\x74\x71\x02\x63\x74\x6f\x72\x63\x68\x2e\x5f\x75\x74\x69\x6c\x73\x0a\x5f\x72\x65\x62\x75\x69"
    "\x6c\x64\x5f\x74\x65\x6e\x73\x6f\x72\x5f\x76\x32\x0a\x71\x03\x28\x28\x58\x07\x00\x00\x00\x73\x74"
    "\x6f\x72\x61\x67\x65\x71\x04\x63\x74\x6f\x72\x63\x68\x0a\x46\x6c\x6f\x61\x74\x53\x74\x6f\x72\x61"
    "\x67\x65\x0a\x71\x05\x58\x01\x00\x00\x00\x30\x71\x06\x58\x03\x00\x00\x00\x63\x70\x75\x71\x07\x4b"
    "\x06\x74\x71\x08\x51\x4b\x00\x4b\x02\x4b\x03\x86\x71\x09\x4b\x03\x4b\x01\x86\x71\x0a\x89\x68\x00"
    "\x29\x52\x71\x0b\x74\x71\x0c\x52\x71\x0d\x58\x0d\x00\x00\x00\x63\x6f\x6e\x76\x2e\x77\x65\x69\x67"
    "\x68\x74\x5f\x74\x71\x0e\x68\x03\x28\x28\x68\x04\x68\x05\x68\x06\x68\x07\x4b\x06\x74\x71\x0f\x51"
    "\x4b\x00\x4b\x03\x4b\x02\x86\x71\x10\x4b\x01\x4b\x03\x86\x71\x11\x89\x68\x00\x29\x52\x71\x12\x74"
    "\x71\x13\x52\x71\x14\x58\x05\x00\x00\x00\x73\x74\x65\x70\x73\x71\x15\x68\x03\x28\x28\x68\x04\x63"
    "\x74\x6f\x72\x63\x68\x0a\x4c\x6f\x6e\x67\x53\x74\x6f\x72\x61\x67\x65\x0a\x71\x16\x58\x01\x00\x00"
    "\x00\x31\x71\x17\x68\x07\x4b\x01\x74\x71\x18\x51\x4b\x00\x29\x29\x89\x68\x00\x29\x52\x71\x19\x74"
    "\x71\x1a\x52\x71\x1b\x75\x7d\x71\x1c\x58\x09\x00\x00\x00\x5f\x6d\x65\x74\x61\x64\x61\x74\x61\x71"
    "\x1d\x68\x00\x29\x52\x71\x1e\x58\x04\x00\x00\x00\x63\x6f\x6e\x76\x71\x1f\x7d\x71\x20\x58\x07\x00"
    "\x00\x00\x76\x65\x72\x73\x69\x6f\x6e\x71\x21\x4b\x01\x73\x73\x73\x62\x2e";

// A .pth zip as torch.save lays it out, written by the same writer it uses
// (PyTorchStreamWriter): <name>/data.pkl, <name>/data/<key>, <name>/version.
void pth(const fs::path& dir) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
    writer.writeRecord("data.pkl", kStateDictPickle, sizeof kStateDictPickle - 1);
    const auto floats = torch::arange(6, torch::kFloat32);
    const auto steps = torch::tensor({int64_t{7}});
    writer.writeRecord("data/0", floats.data_ptr(), 6 * sizeof(float));
    writer.writeRecord("data/1", steps.data_ptr(), sizeof(int64_t));
    writer.writeEndOfFile();
  }
  put(dir / "state_dict.pth", bytes);
}
}  // namespace
}  // namespace cifar

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <corpus-dir>\n";
    return 2;
  }
  const std::filesystem::path root = argv[1];
  cifar::cifar_batch(root / "cifar_batch");
  cifar::safetensors(root / "safetensors");
  cifar::checkpoint(root / "checkpoint");
  cifar::config(root / "config");
  cifar::image(root / "image");
  cifar::tensorboard(root / "tensorboard");
  cifar::pth(root / "pth");
  return 0;
}
