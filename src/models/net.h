// What every model is: a torch Module with forward(images) -> logits, and a
// ModelSpec that records everything needed to rebuild it from a checkpoint
// alone (type, depth, width, input size, classes, normalisation).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cifar {

struct ModelSpec {
  std::string type = "resnet";  // resnet | cnn | efficientnet | fast
  int depth = 18;
  int width = 0;
  int input_size = 32;
  double dropout = 0.3;
  std::vector<std::string> class_names;
  std::vector<double> mean{0, 0, 0};
  std::vector<double> std{1, 1, 1};
  // Divides the logits when confidences are reported (temperature scaling,
  // fitted after training; evaluation/calibration.h). 1 = as trained.
  double temperature = 1.0;
  int num_classes() const { return static_cast<int>(class_names.size()); }
};

// The widest model a spec may ask for (--width): 1024 makes the fast net
// 1024-4096-4096 channels, 150M parameters.
constexpr int kMaxWidth = 1024;

nlohmann::json spec_to_json(const ModelSpec& spec);
// Parses and checks (check_spec) a spec read from a checkpoint: a hostile
// one must not make build_model() allocate without bound or index past the
// three channel statistics. Throws UserError.
ModelSpec spec_from_json(const nlohmann::json& j);
void check_spec(const ModelSpec& spec);

class Net : public torch::nn::Module {
 public:
  // x: normalised float [B, 3, 32, 32]; returns logits [B, classes].
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // The child module that maps features to logits ("fc", "classifier", ...):
  // what stays trainable while the backbone is frozen.
  virtual std::string head_name() const = 0;
  // Parameters the architecture never trains (the fast net's whitening
  // filters and batch-norm scales); unfreezing the backbone leaves them alone.
  virtual bool is_fixed_parameter(const std::string& /*name*/) const { return false; }
  // While the backbone is frozen its batch norms stay in eval mode, so
  // head-only training does not drift the pretrained running statistics.
  void train(bool on = true) override;
  bool backbone_frozen() const { return backbone_frozen_; }
  bool is_head_parameter(const std::string& name) const;

  // Parameters that should not get weight decay (biases, norm affine).
  std::vector<torch::Tensor> no_decay_parameters();
  std::vector<torch::Tensor> decay_parameters();

 private:
  bool backbone_frozen_ = false;
  friend void set_backbone_trainable(Net& model, bool trainable);
};
using NetPtr = std::shared_ptr<Net>;

int64_t count_parameters(torch::nn::Module& m, bool trainable_only = false);

// The floating type of the model's weights (float32 unless the model was
// converted): its inputs are normalised into it.
torch::ScalarType weight_dtype(torch::nn::Module& m);

// `t` as float32 at least: bf16 autocast outputs go up to float32 for the
// loss and softmax, a float64 model's stay float64.
inline torch::Tensor at_least_float32(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? t : t.to(torch::kFloat32);
}

// Freezes (false) or unfreezes (true) every parameter outside the head by
// setting requires_grad; the head always stays trainable. Call it before
// building the optimiser, or rebuild the optimiser after it.
void set_backbone_trainable(Net& model, bool trainable);

// LibTorch's C++ modules have no forward hooks, so models call their layers
// through run_layer() and Layers. While a LayerTrace is alive on this thread
// (print_summary) each leaf layer's output shape is recorded; otherwise they
// are plain calls plus one pointer test.
struct LayerCall {
  const torch::nn::Module* layer;
  std::vector<int64_t> output_shape;
};

class LayerTrace {
 public:
  LayerTrace();
  ~LayerTrace();
  LayerTrace(const LayerTrace&) = delete;
  LayerTrace& operator=(const LayerTrace&) = delete;
  const std::vector<LayerCall>& calls() const { return calls_; }
  static bool active();
  static void record(const torch::nn::Module& layer, const torch::Tensor& output);

 private:
  std::vector<LayerCall> calls_;
  LayerTrace* previous_;
};

template <class Layer>
torch::Tensor run_layer(Layer& layer, const torch::Tensor& x) {
  auto y = layer->forward(x);
  LayerTrace::record(*layer, y);
  return y;
}

// A Sequential that traces its leaves and can nest inside another one
// (LibTorch's own cannot: its templated forward() does not fit AnyModule).
class LayersImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(Layers);

}  // namespace cifar
