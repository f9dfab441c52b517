// Optimisers from the config: Adam (the original's), AdamW, SGD with
// momentum / Nesterov. Two parameter groups: conv and linear weights get the
// L2 weight decay (regularization_factor), biases and norm parameters none.
#pragma once
#include <torch/torch.h>

#include "config/config.h"
#include "models/net.h"

namespace cifar {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& config, Net& model);

double get_learning_rate(const torch::optim::Optimizer& optimizer);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace cifar
