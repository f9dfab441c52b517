// Complete, versioned checkpoints: model weights and buffers, optimiser
// state, and a JSON record of everything else (format version, model spec,
// configuration, epoch and step, every callback's state, the history, the
// partial epoch's metric sums). Written atomically: temp file, fsync, rename.
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "models/net.h"

namespace cifar {

// 2: optimiser state by parameter place (readable by any LibTorch); 1: in
// torch::optim's own layout, keyed by address.
constexpr int kCheckpointVersion = 2;
constexpr const char* kCheckpointFormat = "cifar10-checkpoint";

// Tensors kept beside the model and optimiser, by name (a callback's, such
// as the lookahead's slow weights).
using NamedTensors = std::map<std::string, torch::Tensor>;

struct CheckpointData {
  nlohmann::json meta;  // {"format", "version", "spec", "config", "epoch", ...}
  // Serialized archives, kept as bytes so a checkpoint can be inspected
  // (meta) without building the model.
  std::string model_bytes;
  std::string optimizer_bytes;  // empty when saved without an optimiser
  std::string tensors_bytes;    // empty when saved without named tensors
};

// Saves model (+ optimiser) and `meta` to `path` atomically. `meta` gets
// "format", "version" and "spec" filled in.
void save_checkpoint(const std::string& path, Net& model, const ModelSpec& spec,
                     torch::optim::Optimizer* optimizer, nlohmann::json meta, const NamedTensors& tensors = {});

// The named tensors of a checkpoint (meta "tensors" lists their names),
// each checked against its storage; `path` names the file in errors.
NamedTensors read_named_tensors(const CheckpointData& data, const std::string& path);

// Rewrites the checkpoint at `path` with its model's temperature set
// (calibration after training), its weights and state as they are.
void set_checkpoint_temperature(const std::string& path, double temperature);

// Reads and checks a checkpoint file: refuses files that are not ours, of
// a newer format version, or truncated, with one line naming the file.
CheckpointData read_checkpoint(const std::string& path);
// The same on a checkpoint's bytes; `source` names it in errors.
CheckpointData parse_checkpoint(std::string_view bytes, const std::string& source);
// The checks on the "meta" record alone: format, version, model spec.
void check_checkpoint_meta(const nlohmann::json& meta, const std::string& source);

// Where a checkpoint says training stopped, checked for type and range.
struct ResumePoint {
  int epoch = 0;
  int64_t step_in_epoch = 0;
  int64_t global_step = 0;
  double learning_rate = 0;
  std::optional<std::vector<double>> partial;  // loss_sum, correct, top3, count
  nlohmann::json callbacks = nlohmann::json::object();
  // The run's totals up to the checkpoint, earlier parts included (zeros
  // in files written before they were kept).
  double train_seconds = 0;
  double wall_seconds = 0;
  int64_t images_trained = 0;
  int threads = 0;  // intra-op threads it trained with; 0: not recorded
};
ResumePoint resume_point(const nlohmann::json& meta, const std::string& source);

// Loads the weights of `data` into `model` (which must match its spec), on
// the device the model is on.
void load_model_state(const CheckpointData& data, Net& model, const std::string& path);
void load_optimizer_state(const CheckpointData& data, torch::optim::Optimizer& optimizer,
                          const std::string& path, const torch::Device& device = torch::kCPU);

struct LoadedModel {
  NetPtr model;
  ModelSpec spec;
  nlohmann::json meta;
};

// Rebuilds the model a checkpoint describes, with its weights, in eval mode
// on `device`; nothing but the file is needed.
LoadedModel load_model(const std::string& path, const torch::Device& device);

}  // namespace cifar
