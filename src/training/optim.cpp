#include "training/optim.h"

namespace cifar {
namespace {

template <class Optimizer, class Options>
std::unique_ptr<torch::optim::Optimizer> grouped(Net& model, Options base, double weight_decay) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(model.decay_parameters(), std::make_unique<Options>(Options(base).weight_decay(weight_decay)));
  groups.emplace_back(model.no_decay_parameters(), std::make_unique<Options>(Options(base).weight_decay(0.0)));
  return std::make_unique<Optimizer>(groups, base);
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c, Net& model) {
  const double wd = c.regularization_factor;
  if (c.optimizer == "sgd") {
    return grouped<torch::optim::SGD>(
        model, torch::optim::SGDOptions(c.learning_rate).momentum(c.momentum).nesterov(c.nesterov), wd);
  }
  if (c.optimizer == "adamw") {
    return grouped<torch::optim::AdamW>(model, torch::optim::AdamWOptions(c.learning_rate), wd);
  }
  return grouped<torch::optim::Adam>(model, torch::optim::AdamOptions(c.learning_rate), wd);
}

double get_learning_rate(const torch::optim::Optimizer& optimizer) {
  return optimizer.param_groups().front().options().get_lr();
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace cifar
