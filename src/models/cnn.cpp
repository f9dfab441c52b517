#include "models/cnn.h"

namespace cifar {
namespace nn = torch::nn;

namespace {
// conv3x3 without bias: the batch norm that follows has its own shift.
void add_conv_bn_relu(Layers& seq, int64_t in, int64_t out) {
  seq->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  seq->push_back(nn::BatchNorm2d(out));
  seq->push_back(nn::ReLU(nn::ReLUOptions(true)));
}
}  // namespace

CnnNet::CnnNet(const ModelSpec& spec) {
  features = Layers();
  int64_t in = 3;
  // Block dropout is lighter than the head's, as in the original (0.25 vs 0.5
  // at its default 0.3 dropout rate it scales to 0.15 / 0.3).
  for (int64_t width : {32, 64, 128}) {
    add_conv_bn_relu(features, in, width);
    add_conv_bn_relu(features, width, width);
    features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    features->push_back(nn::Dropout(spec.dropout / 2));
    in = width;
  }
  classifier = Layers(nn::Flatten(), nn::Linear(nn::LinearOptions(128 * 4 * 4, 512).bias(false)),
                      nn::BatchNorm1d(512), nn::ReLU(nn::ReLUOptions(true)), nn::Dropout(spec.dropout),
                      nn::Linear(512, spec.num_classes()));
  register_module("features", features);
  register_module("classifier", classifier);
}

torch::Tensor CnnNet::forward(torch::Tensor x) {
  return classifier->forward(features->forward(std::move(x)));
}

}  // namespace cifar
