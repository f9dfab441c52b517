#include "models/resnet.h"

#include "common/error.h"

namespace cifar {
namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  // No bias: the batch norm that follows has its own shift.
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// The shortcut when a block changes resolution or width.
enum class Shortcut { kProjection, kZeroPad };

class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride, Shortcut shortcut)
      : conv1(conv(in, out, 3, stride)), bn1(out), conv2(conv(out, out, 3)), bn2(out), relu(nn::ReLUOptions(true)) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    register_module("relu", relu);
    if (stride != 1 || in != out) {
      if (shortcut == Shortcut::kProjection) {
        downsample = register_module("downsample", Layers(conv(in, out, 1, stride), nn::BatchNorm2d(out)));
      } else {
        pad_stride_ = stride;
        pad_channels_ = out - in;
      }
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    auto y = run_layer(relu, run_layer(bn1, run_layer(conv1, x)));
    y = run_layer(bn2, run_layer(conv2, y));
    return run_layer(relu, y + shortcut(x));
  }

 private:
  torch::Tensor shortcut(const torch::Tensor& x) {
    if (downsample) return downsample->forward(x);
    if (pad_channels_ == 0 && pad_stride_ == 1) return x;
    // Option A: keep every other pixel, split the new channels' zeros
    // evenly before and after the old ones (as the reference CIFAR code).
    auto sub = x.slice(2, 0, x.size(2), pad_stride_).slice(3, 0, x.size(3), pad_stride_);
    const int64_t before = pad_channels_ / 2;
    return torch::constant_pad_nd(sub, {0, 0, 0, 0, before, pad_channels_ - before}, 0);
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::ReLU relu;
  Layers downsample{nullptr};
  int64_t pad_stride_ = 1;
  int64_t pad_channels_ = 0;
};
TORCH_MODULE(BasicBlock);

// 1x1 reduce, 3x3 (strided), 1x1 expand to 4x: the ResNet-50 block.
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckImpl(int64_t in, int64_t width, int64_t stride)
      : conv1(conv(in, width, 1)),
        bn1(width),
        conv2(conv(width, width, 3, stride)),
        bn2(width),
        conv3(conv(width, width * kExpansion, 1)),
        bn3(width * kExpansion),
        relu(nn::ReLUOptions(true)) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    register_module("conv3", conv3);
    register_module("bn3", bn3);
    register_module("relu", relu);
    if (stride != 1 || in != width * kExpansion) {
      downsample = register_module(
          "downsample", Layers(conv(in, width * kExpansion, 1, stride), nn::BatchNorm2d(width * kExpansion)));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    auto y = run_layer(relu, run_layer(bn1, run_layer(conv1, x)));
    y = run_layer(relu, run_layer(bn2, run_layer(conv2, y)));
    y = run_layer(bn3, run_layer(conv3, y));
    return run_layer(relu, y + (downsample ? downsample->forward(x) : x));
  }

 private:
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Conv2d conv3;
  nn::BatchNorm2d bn3;
  nn::ReLU relu;
  Layers downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

struct Layout {
  int64_t stem;                 // stem conv channels
  std::vector<int64_t> widths;  // per stage
  std::vector<int> blocks;      // per stage
  bool bottleneck;
  Shortcut shortcut;
};

Layout layout_for(int depth) {
  switch (depth) {
    case 18: return {64, {64, 128, 256, 512}, {2, 2, 2, 2}, false, Shortcut::kProjection};
    case 34: return {64, {64, 128, 256, 512}, {3, 4, 6, 3}, false, Shortcut::kProjection};
    case 50: return {64, {64, 128, 256, 512}, {3, 4, 6, 3}, true, Shortcut::kProjection};
    default: {
      const int n = (depth - 2) / 6;
      return {16, {16, 32, 64}, {n, n, n}, false, Shortcut::kZeroPad};
    }
  }
}

}  // namespace

void check_resnet_depth(int depth) {
  for (int d : {18, 34, 50, 20, 32, 56, 110}) if (d == depth) return;
  throw UserError("unsupported ResNet depth " + std::to_string(depth) +
                  ": expected one of 18, 34, 50 (ImageNet layout) or 20, 32, 56, 110 (He et al. CIFAR)");
}

ResNet::ResNet(const ModelSpec& spec) {
  check_resnet_depth(spec.depth);
  const Layout l = layout_for(spec.depth);
  conv1 = register_module("conv1", conv(3, l.stem, 3));
  bn1 = register_module("bn1", nn::BatchNorm2d(l.stem));
  relu = register_module("relu", nn::ReLU(nn::ReLUOptions(true)));
  int64_t in = l.stem;
  for (size_t s = 0; s < l.widths.size(); ++s) {
    Layers stage;
    for (int b = 0; b < l.blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      if (l.bottleneck) {
        stage->push_back(Bottleneck(in, l.widths[s], stride));
        in = l.widths[s] * BottleneckImpl::kExpansion;
      } else {
        stage->push_back(BasicBlock(in, l.widths[s], stride, l.shortcut));
        in = l.widths[s];
      }
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(1));
  flatten = register_module("flatten", nn::Flatten());
  dropout = register_module("dropout", nn::Dropout(spec.dropout));
  fc = register_module("fc", nn::Linear(in, spec.num_classes()));

  // He (fan_out) init for convs as torchvision; batch norms start at
  // identity (LibTorch's default), the linear layer keeps its default.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
  }
}

torch::Tensor ResNet::forward(torch::Tensor x) {
  x = run_layer(relu, run_layer(bn1, run_layer(conv1, x)));
  for (auto& stage : stages_) x = stage->forward(x);
  x = run_layer(flatten, run_layer(avgpool, x));
  return run_layer(fc, run_layer(dropout, x));
}

}  // namespace cifar
