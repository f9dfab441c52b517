#include "models/fastnet.h"

#include "common/error.h"

namespace cifar {
namespace nn = torch::nn;

namespace {

constexpr int64_t kPatch = 2;                            // whitening kernel side
constexpr int64_t kPatchDims = 3 * kPatch * kPatch;      // 12 eigenvectors
constexpr double kWhiteningEps = 5e-4;                   // airbench's floor on eigenvalues
constexpr double kOutputScale = 1.0 / 9.0;               // airbench's logit scaling
constexpr int64_t kDefaultWidth = 64;

nn::Conv2d conv3x3(int64_t in, int64_t out) {
  nn::Conv2d c(nn::Conv2dOptions(in, out, 3).padding(1).bias(false));
  // An identity path through the first filters lets the deep plain stack
  // train from the first step (airbench's dirac init).
  torch::NoGradGuard no_grad;
  nn::init::dirac_(c->weight.narrow(0, 0, std::min(in, out)));
  return c;
}

nn::BatchNorm2d batch_norm(int64_t channels) {
  nn::BatchNorm2d bn(nn::BatchNorm2dOptions(channels).eps(1e-12).momentum(0.4));
  bn->weight.set_requires_grad(false);
  return bn;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ConvGroupImpl::ConvGroupImpl(int64_t in, int64_t out) {
  conv1 = register_module("conv1", conv3x3(in, out));
  pool = register_module("pool", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  norm1 = register_module("norm1", batch_norm(out));
  conv2 = register_module("conv2", conv3x3(out, out));
  norm2 = register_module("norm2", batch_norm(out));
  activ = register_module("activ", nn::GELU());
}

torch::Tensor ConvGroupImpl::forward(torch::Tensor x) {
  x = run_layer(activ, run_layer(norm1, run_layer(pool, run_layer(conv1, x))));
  return run_layer(activ, run_layer(norm2, run_layer(conv2, x)));
}

int64_t fast_net_width(const ModelSpec& spec) { return spec.width > 0 ? spec.width : kDefaultWidth; }

FastNet::FastNet(const ModelSpec& spec) {
  check_input(spec.width >= 0, "--width " + std::to_string(spec.width) + " is negative", "use 0 for the default 64");
  const int64_t w = fast_net_width(spec);
  whiten = register_module("whiten", nn::Conv2d(nn::Conv2dOptions(3, 2 * kPatchDims, kPatch).bias(true)));
  {
    torch::NoGradGuard no_grad;
    whiten->bias.zero_();
  }
  whiten->weight.set_requires_grad(false);
  whiten_activ = register_module("whiten_activ", nn::GELU());
  block1 = register_module("block1", ConvGroup(2 * kPatchDims, w));
  block2 = register_module("block2", ConvGroup(w, 4 * w));
  block3 = register_module("block3", ConvGroup(4 * w, 4 * w));
  pool = register_module("pool", GlobalMaxPool());
  flatten = register_module("flatten", nn::Flatten());
  head = register_module("head", nn::Linear(nn::LinearOptions(4 * w, spec.num_classes()).bias(false)));
}

bool FastNet::is_fixed_parameter(const std::string& name) const {
  return name == "whiten.weight" || ends_with(name, ".norm1.weight") || ends_with(name, ".norm2.weight");
}

torch::Tensor FastNet::forward(torch::Tensor x) {
  x = run_layer(whiten_activ, run_layer(whiten, x));
  x = block3->forward(block2->forward(block1->forward(x)));
  x = run_layer(flatten, run_layer(pool, x));
  return run_layer(head, x) * kOutputScale;
}

void FastNet::init_whitening(const torch::Tensor& images) {
  check_input(images.dim() == 4 && images.size(0) > 0 && images.size(1) == 3 && images.size(2) >= kPatch &&
                  images.size(3) >= kPatch && images.is_floating_point(),
              "init_whitening needs normalised float images [N, 3, H, W]");
  torch::NoGradGuard no_grad;
  // Second moments of every 2x2x3 patch, in (channel, row, column) order to
  // match the conv weight layout; accumulated in float64 chunk by chunk so a
  // 5,000-image sample never needs its 4.8M patches in memory at once.
  auto moments = torch::zeros({kPatchDims, kPatchDims}, images.options().dtype(torch::kFloat64));
  int64_t count = 0;
  for (const auto& chunk : images.split(256)) {
    auto patches = chunk.to(torch::kFloat64)
                       .unfold(2, kPatch, 1)
                       .unfold(3, kPatch, 1)
                       .permute({0, 2, 3, 1, 4, 5})
                       .reshape({-1, kPatchDims});
    moments += patches.t().mm(patches);
    count += patches.size(0);
  }
  moments = (moments / static_cast<double>(count)).cpu();
  // at::linalg_eigh: torch::linalg (torch/linalg.h) is gone from LibTorch 2.x.
  auto [eigenvalues, eigenvectors] = at::linalg_eigh(moments, "U");
  // Largest eigenvalue first, as airbench orders the filters.
  auto filters = eigenvectors.t().flip({0}).reshape({kPatchDims, 3, kPatch, kPatch});
  auto scale = (eigenvalues.flip({0}) + kWhiteningEps).rsqrt().view({-1, 1, 1, 1});
  auto scaled = filters * scale;
  whiten->weight.copy_(torch::cat({scaled, -scaled}).to(whiten->weight.dtype()));
}

void init_whitening(Net& model, const torch::Tensor& train_images_float_normalized) {
  auto* fast = dynamic_cast<FastNet*>(&model);
  check_input(fast != nullptr, "init_whitening applies to --model-type fast only");
  fast->init_whitening(train_images_float_normalized);
}

}  // namespace cifar
