#include "training/optim.h"

#include <cmath>

#include "common/torch_compat.h"

namespace cifar {
namespace {

using Tensors = std::vector<torch::Tensor>;
using Scalars = std::vector<at::Scalar>;

// kAuto's choice, made at each step since a model may move after its
// optimiser was built.
bool on_cuda(const torch::optim::Optimizer& optimizer) {
  for (const auto& group : optimizer.param_groups()) {
    if (!group.params().empty()) return group.params().front().is_cuda();
  }
  return false;
}

// torch::optim's closure protocol: the loss, evaluated with gradients on.
torch::Tensor evaluate(const torch::optim::Optimizer::LossClosure& closure) {
  if (!closure) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

// The parameters of a group that have a gradient this step, and those
// gradients: torch::optim skips the others, and so do we.
struct WithGrads {
  Tensors params, grads;
};

WithGrads with_grads(torch::optim::OptimizerParamGroup& group, const char* name) {
  WithGrads w;
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    TORCH_CHECK(!p.grad().is_sparse(), name, " does not support sparse gradients");
    w.params.push_back(p);
    w.grads.push_back(p.grad());
  }
  return w;
}

// Adam and AdamW in torch::optim's arithmetic (adam.cpp, adamw.cpp), a group
// at a time: AdamW decays the weights before the moments (decoupled), Adam
// adds the decay to the gradient. Bias corrections are per parameter, as a
// parameter's step count can lag when it had no gradient on some steps.
template <class Base, class Options, class State, bool kDecoupledDecay>
class ForeachAdam final : public Base {
 public:
  ForeachAdam(std::vector<torch::optim::OptimizerParamGroup> groups, Options defaults, bool cuda_only)
      : Base(std::move(groups), std::move(defaults)), cuda_only_(cuda_only) {}

  torch::Tensor step(torch::optim::Optimizer::LossClosure closure = nullptr) override {
    if (cuda_only_ && !on_cuda(*this)) return Base::step(std::move(closure));
    torch::Tensor loss = evaluate(closure);
    torch::NoGradGuard no_grad;
    for (auto& group : this->param_groups_) {
      auto& o = static_cast<Options&>(group.options());
      auto [params, grads] = with_grads(group, kDecoupledDecay ? "AdamW" : "Adam");
      if (params.empty()) continue;
      const auto [beta1, beta2] = o.betas();
      Tensors exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
      Scalars sqrt_bias_correction2, neg_step_size;
      for (auto& p : params) {
        auto& state = state_of(p, o.amsgrad());
        state.step(state.step() + 1);
        const double bias_correction1 = 1 - std::pow(beta1, state.step());
        const double bias_correction2 = 1 - std::pow(beta2, state.step());
        sqrt_bias_correction2.emplace_back(std::sqrt(bias_correction2));
        neg_step_size.emplace_back(-(o.lr() / bias_correction1));
        exp_avgs.push_back(state.exp_avg());
        exp_avg_sqs.push_back(state.exp_avg_sq());
        if (o.amsgrad()) max_exp_avg_sqs.push_back(state.max_exp_avg_sq());
      }
      if (o.weight_decay() != 0) {
        if (kDecoupledDecay) {
          at::_foreach_mul_(params, 1 - o.lr() * o.weight_decay());
        } else {
          grads = at::_foreach_add(grads, params, o.weight_decay());
        }
      }
      at::_foreach_mul_(exp_avgs, beta1);
      at::_foreach_add_(exp_avgs, grads, 1 - beta1);
      at::_foreach_mul_(exp_avg_sqs, beta2);
      at::_foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2);
      Tensors denoms;
      if (o.amsgrad()) {
        // Never on by our config; kept so the class stays a faithful Adam.
        for (size_t i = 0; i < params.size(); ++i) {
          torch::max_out(max_exp_avg_sqs[i], exp_avg_sqs[i], max_exp_avg_sqs[i]);
        }
        denoms = at::_foreach_sqrt(max_exp_avg_sqs);
      } else {
        denoms = at::_foreach_sqrt(exp_avg_sqs);
      }
      at::_foreach_div_(denoms, at::ArrayRef<at::Scalar>(sqrt_bias_correction2));
      at::_foreach_add_(denoms, o.eps());
      at::_foreach_addcdiv_(params, exp_avgs, denoms, at::ArrayRef<at::Scalar>(neg_step_size));
    }
    return loss;
  }

 private:
  State& state_of(const torch::Tensor& p, bool amsgrad) {
    const auto key = compat::optimizer_state_key(p);
    auto it = this->state_.find(key);
    if (it == this->state_.end()) {
      // Built whole before it is stored: a failed allocation leaves no
      // empty entry for a later checkpoint to trip on.
      auto state = std::make_unique<State>();
      state->step(0);
      state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
      state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      if (amsgrad) state->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      it = this->state_.emplace(key, std::move(state)).first;
    }
    return static_cast<State&>(*it->second);
  }

  bool cuda_only_;
};

using ForeachAdamL2 = ForeachAdam<torch::optim::Adam, torch::optim::AdamOptions, torch::optim::AdamParamState, false>;
using ForeachAdamW = ForeachAdam<torch::optim::AdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState, true>;

// SGD in torch::optim's arithmetic (sgd.cpp): the momentum buffer starts as
// a copy of the first gradient.
class ForeachSGD final : public torch::optim::SGD {
 public:
  ForeachSGD(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::SGDOptions defaults, bool cuda_only)
      : SGD(std::move(groups), std::move(defaults)), cuda_only_(cuda_only) {}

  torch::Tensor step(LossClosure closure = nullptr) override {
    if (cuda_only_ && !on_cuda(*this)) return SGD::step(std::move(closure));
    torch::Tensor loss = evaluate(closure);
    torch::NoGradGuard no_grad;
    for (auto& group : param_groups_) {
      auto& o = static_cast<torch::optim::SGDOptions&>(group.options());
      auto [params, d_p] = with_grads(group, "SGD");
      if (params.empty()) continue;
      if (o.weight_decay() != 0) d_p = at::_foreach_add(d_p, params, o.weight_decay());
      if (o.momentum() != 0) {
        Tensors bufs, running_bufs, running_d_p;
        for (size_t i = 0; i < params.size(); ++i) {
          const auto key = compat::optimizer_state_key(params[i]);
          auto it = state_.find(key);
          if (it == state_.end()) {
            auto state = std::make_unique<torch::optim::SGDParamState>();
            state->momentum_buffer(d_p[i].detach().clone());
            it = state_.emplace(key, std::move(state)).first;
          } else {
            running_bufs.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
            running_d_p.push_back(d_p[i]);
          }
          bufs.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
        }
        if (!running_bufs.empty()) {
          at::_foreach_mul_(running_bufs, o.momentum());
          at::_foreach_add_(running_bufs, running_d_p, 1 - o.dampening());
        }
        if (o.nesterov()) {
          d_p = at::_foreach_add(d_p, bufs, o.momentum());
        } else {
          d_p = bufs;
        }
      }
      at::_foreach_add_(params, d_p, -1 * o.lr());
    }
    return loss;
  }

 private:
  bool cuda_only_;
};

template <class Optimizer, class Options, class... Extra>
std::unique_ptr<torch::optim::Optimizer> grouped(Net& model, Options base, double weight_decay, Extra... extra) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(model.decay_parameters(), std::make_unique<Options>(Options(base).weight_decay(weight_decay)));
  groups.emplace_back(model.no_decay_parameters(), std::make_unique<Options>(Options(base).weight_decay(0.0)));
  return std::make_unique<Optimizer>(groups, base, extra...);
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c, Net& model, StepKernels kernels) {
  const double wd = c.regularization_factor;
  const bool per_tensor = kernels == StepKernels::kPerTensor, cuda_only = kernels == StepKernels::kAuto;
  if (c.optimizer == "sgd") {
    auto options = torch::optim::SGDOptions(c.learning_rate).momentum(c.momentum).nesterov(c.nesterov);
    return per_tensor ? grouped<torch::optim::SGD>(model, options, wd) : grouped<ForeachSGD>(model, options, wd, cuda_only);
  }
  if (c.optimizer == "adamw") {
    auto options = torch::optim::AdamWOptions(c.learning_rate);
    return per_tensor ? grouped<torch::optim::AdamW>(model, options, wd)
                      : grouped<ForeachAdamW>(model, options, wd, cuda_only);
  }
  auto options = torch::optim::AdamOptions(c.learning_rate);
  return per_tensor ? grouped<torch::optim::Adam>(model, options, wd) : grouped<ForeachAdamL2>(model, options, wd, cuda_only);
}

double get_learning_rate(const torch::optim::Optimizer& optimizer) {
  return optimizer.param_groups().front().options().get_lr();
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
  }
}

void clip_gradients(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    grads.push_back(p.grad());
    norms.push_back(p.grad().norm(2));
  }
  if (grads.empty()) return;
  const auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  const auto scale = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
  for (auto& g : grads) g.mul_(scale);
}

}  // namespace cifar
