#include "models/efficientnet.h"

#include <cmath>

#include "common/error.h"
#include "common/printable.h"

namespace cifar {
namespace nn = torch::nn;

namespace {

// torchvision's Conv2dNormActivation: conv without bias, batch norm, and
// SiLU unless `activate` is false (the linear projection of MBConv).
Layers conv_norm_act(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups = 1,
                     bool activate = true) {
  Layers seq(nn::Conv2d(
                 nn::Conv2dOptions(in, out, kernel).stride(stride).padding((kernel - 1) / 2).groups(groups).bias(false)),
             nn::BatchNorm2d(out));
  if (activate) seq->push_back(nn::SiLU());
  return seq;
}

class SqueezeExcitationImpl : public nn::Module {
 public:
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze)
      : avgpool(1), fc1(nn::Conv2dOptions(channels, squeeze, 1)), fc2(nn::Conv2dOptions(squeeze, channels, 1)) {
    register_module("avgpool", avgpool);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    register_module("activation", activation);
    register_module("scale_activation", scale_activation);
  }

  torch::Tensor forward(torch::Tensor x) {
    auto s = run_layer(activation, run_layer(fc1, run_layer(avgpool, x)));
    s = run_layer(scale_activation, run_layer(fc2, s));
    return s * x;
  }

 private:
  nn::AdaptiveAvgPool2d avgpool;
  nn::Conv2d fc1;
  nn::Conv2d fc2;
  nn::SiLU activation;
  nn::Sigmoid scale_activation;
};
TORCH_MODULE(SqueezeExcitation);

class MBConvImpl : public nn::Module {
 public:
  MBConvImpl(int64_t in, int64_t out, int64_t expand, int64_t kernel, int64_t stride, double drop_prob)
      : residual_(stride == 1 && in == out), drop_prob_(drop_prob) {
    const int64_t expanded = in * expand;
    if (expanded != in) block->push_back(conv_norm_act(in, expanded, 1, 1));
    block->push_back(conv_norm_act(expanded, expanded, kernel, stride, /*groups=*/expanded));
    block->push_back(SqueezeExcitation(expanded, std::max<int64_t>(1, in / 4)));
    block->push_back(conv_norm_act(expanded, out, 1, 1, 1, /*activate=*/false));
    register_module("block", block);
  }

  torch::Tensor forward(torch::Tensor x) {
    auto y = block->forward(x);
    if (!residual_) return y;
    return stochastic_depth(y) + x;
  }

 private:
  // "row" mode as torchvision: each sample's residual branch is dropped with
  // probability p and the survivors scaled by 1/(1-p).
  torch::Tensor stochastic_depth(const torch::Tensor& y) {
    if (!is_training() || drop_prob_ == 0.0) return y;
    const double survival = 1.0 - drop_prob_;
    auto keep = torch::empty({y.size(0), 1, 1, 1}, y.options()).bernoulli_(survival).div_(survival);
    return y * keep;
  }

  Layers block;
  bool residual_;
  double drop_prob_;
};
TORCH_MODULE(MBConv);

struct Stage {
  int64_t expand, kernel, stride, channels, repeats;
};
// The B0 table (width and depth multipliers 1.0).
constexpr Stage kB0[] = {{1, 3, 1, 16, 1},  {6, 3, 2, 24, 2},  {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
                         {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1}};
constexpr int64_t kStemChannels = 32;
constexpr int64_t kHeadChannels = 1280;
constexpr double kStochasticDepth = 0.2;

std::string shape_string(torch::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// "a, b, c" for at most `limit` names, then how many more.
// Names come from the file: each is cut to 100 characters.
std::string name_list(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + printable(names[i], 100);
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

EfficientNet::EfficientNet(const ModelSpec& spec) {
  check_input(spec.input_size >= 32,
              "--input-size " + std::to_string(spec.input_size) + " is below CIFAR's 32 pixels",
              "use 32 (native) or a larger size such as 224 to upsample");
  const bool upsampled = spec.input_size > 32;
  if (upsampled) {
    upsample = register_module(
        "upsample", nn::Upsample(nn::UpsampleOptions()
                                     .size(std::vector<int64_t>{spec.input_size, spec.input_size})
                                     .mode(torch::kBilinear)
                                     .align_corners(false)));
  }
  features = Layers();
  features->push_back(conv_norm_act(3, kStemChannels, 3, upsampled ? 2 : 1));
  int64_t total_blocks = 0;
  for (const auto& s : kB0) total_blocks += s.repeats;
  int64_t in = kStemChannels;
  int64_t block_id = 0;
  for (size_t i = 0; i < std::size(kB0); ++i) {
    const Stage& s = kB0[i];
    // features.2 is the first stride-2 stage; native 32x32 keeps it at 1.
    const int64_t stride = (i == 1 && !upsampled) ? 1 : s.stride;
    Layers stage;
    for (int64_t r = 0; r < s.repeats; ++r, ++block_id) {
      const double drop = kStochasticDepth * static_cast<double>(block_id) / static_cast<double>(total_blocks);
      stage->push_back(MBConv(in, s.channels, s.expand, s.kernel, r == 0 ? stride : 1, drop));
      in = s.channels;
    }
    features->push_back(stage);
  }
  features->push_back(conv_norm_act(in, kHeadChannels, 1, 1));
  register_module("features", features);
  avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(1));
  flatten = register_module("flatten", nn::Flatten());
  classifier = register_module(
      "classifier", Layers(nn::Dropout(spec.dropout), nn::Linear(kHeadChannels, spec.num_classes())));

  // torchvision's initialisation: He (fan_out) for convs, zero conv biases,
  // U(+-1/sqrt(classes)) for the linear weight, zero linear bias.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut);
      if (c->bias.defined()) c->bias.zero_();
    } else if (auto* l = m->as<nn::Linear>()) {
      const double range = 1.0 / std::sqrt(static_cast<double>(l->weight.size(0)));
      l->weight.uniform_(-range, range);
      l->bias.zero_();
    }
  }
}

torch::Tensor EfficientNet::forward(torch::Tensor x) {
  if (upsample) x = run_layer(upsample, x);
  x = features->forward(x);
  x = run_layer(flatten, run_layer(avgpool, x));
  return classifier->forward(x);
}

std::string load_pretrained(Net& model, const ModelSpec& spec, const std::string& path) {
  return load_pretrained(model, spec, read_safetensors(path), path);
}

std::string load_pretrained(Net& model, const ModelSpec& spec, const TensorMap& file, const std::string& path) {
  check_input(spec.type == "efficientnet",
              "--pretrained-weights " + path + " is for --model-type efficientnet, not " + spec.type,
              "drop --pretrained-weights or use --model-type efficientnet");

  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : model.named_parameters()) targets.emplace(item.key(), item.value());
  for (const auto& item : model.named_buffers()) targets.emplace(item.key(), item.value());

  // The head goes in whole or not at all: one that fits nowhere (an
  // ImageNet head of 1000 classes, or none) is replaced by the model's
  // fresh one; one that fits in part is a broken file, refused below.
  int head_tensors = 0, head_fits = 0;
  for (const auto& [name, target] : targets) {
    if (!model.is_head_parameter(name)) continue;
    ++head_tensors;
    auto it = file.find(name);
    head_fits += it != file.end() && it->second.sizes() == target.sizes();
  }
  const bool load_head = head_fits == head_tensors;

  std::vector<std::string> missing, unexpected, wrong_shape, wrong_type, not_finite;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (into, from)
  for (const auto& [name, target] : targets) {
    auto it = file.find(name);
    const bool replaced_head = model.is_head_parameter(name) && head_fits == 0;
    if (replaced_head) continue;
    if (it == file.end()) {
      // A step counter the weights do not depend on; some exporters drop it.
      if (!ends_with(name, ".num_batches_tracked")) missing.push_back(name);
    } else if (it->second.sizes() != target.sizes()) {
      wrong_shape.push_back(name + " " + shape_string(it->second.sizes()) + " (model " +
                            shape_string(target.sizes()) + ")");
    } else if (target.is_floating_point() && !it->second.is_floating_point()) {
      // An integer file would load as whole numbers (mostly 0): no weights.
      // (The other way, a float step counter, converts harmlessly.)
      wrong_type.push_back(name + " " + std::string(c10::toString(it->second.scalar_type())));
    } else if (it->second.is_floating_point() && !torch::isfinite(it->second).all().item<bool>()) {
      not_finite.push_back(name);
    } else {
      copies.emplace_back(target, it->second);
    }
  }
  for (const auto& [name, tensor] : file) {
    if (!targets.count(name)) unexpected.push_back(name);
  }
  std::string detail;
  auto add = [&](const char* what, const std::vector<std::string>& names) {
    if (!names.empty()) detail += (detail.empty() ? "" : "; ") + std::string(what) + name_list(names);
  };
  add("missing: ", missing);
  add("unexpected: ", unexpected);
  add("wrong shape: ", wrong_shape);
  add("not floating point: ", wrong_type);
  add("NaN or infinite values in: ", not_finite);
  if (!detail.empty()) {
    throw UserError("pretrained weights " + path + " do not fit efficientnet: " + detail +
                    " (hint: give torchvision's efficientnet_b0 weights, its state_dict as .pth or .safetensors, or "
                    "--pretrained-weights imagenet)");
  }
  torch::NoGradGuard no_grad;
  // F16/BF16/F64 files are converted to the model's float32 here.
  for (auto& [into, from] : copies) into.copy_(from.to(into.dtype()));
  std::string report = "Loaded " + std::to_string(copies.size()) + " tensors from " + path;
  if (!load_head) {
    const auto bias = file.find("classifier.1.bias");
    report += "; a new " + std::to_string(spec.class_names.size()) + "-class classifier replaces " +
              (bias != file.end() ? "the file's " + std::to_string(bias->second.numel()) + "-class one"
                                  : "the file's missing one");
  }
  return report;
}

}  // namespace cifar
