// The foreach optimisers (training/optim.cpp) against torch::optim's own
// Adam, AdamW and SGD: on the CPU every parameter and every state tensor
// must come out equal to the bit, including a parameter that misses a
// gradient on one step, and state written by torch::optim must be found
// and continued (a checkpoint from before the change resumes exactly).
#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "common/torch_compat.h"
#include "models/registry.h"
#include "training/optim.h"

namespace cifar {
namespace {

const std::vector<std::string> kClasses{"airplane", "automobile", "bird", "cat", "deer",
                                        "dog",      "frog",       "horse", "ship", "truck"};

struct Case {
  std::string model;
  int depth;
  std::string optimizer;
  bool nesterov;
};

NetPtr make_model(const Case& c, torch::Device device = torch::kCPU) {
  ModelConfig mc;
  mc.model_type = c.model;
  mc.depth = c.depth;
  torch::manual_seed(3);
  auto model = build_model(make_spec(mc, kClasses, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}));
  model->to(device);
  model->train();
  return model;
}

TrainConfig train_config(const Case& c) {
  TrainConfig tc;
  tc.optimizer = c.optimizer;
  tc.nesterov = c.nesterov;
  tc.learning_rate = c.optimizer == "sgd" ? 0.05 : 0.01;
  tc.regularization_factor = 5e-3;  // large enough to matter in a few steps
  return tc;
}

// One training step on a fixed batch; on `drop_first_grad` steps the first
// parameter gets no gradient, so its step count falls behind the others'.
// `before_step` runs between the backward pass and the step.
void train_step(Net& model, torch::optim::Optimizer& optimizer, int step, bool drop_first_grad,
                const std::function<void()>& before_step = [] {}) {
  clear_gradients(optimizer);
  torch::manual_seed(100 + step);
  const auto device = model.parameters().front().device();
  auto x = torch::randn({8, 3, 32, 32}).to(device).contiguous(at::MemoryFormat::ChannelsLast);
  auto y = torch::randint(0, 10, {8}).to(device);
  torch::nn::functional::cross_entropy(model.forward(x), y).backward();
  if (drop_first_grad) model.parameters().front().mutable_grad() = torch::Tensor();
  before_step();
  optimizer.step();
}

std::vector<torch::Tensor> state_tensors(const torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  const auto it = optimizer.state().find(compat::optimizer_state_key(p));
  if (it == optimizer.state().end()) return {};
  const auto* s = it->second.get();
  if (const auto* a = dynamic_cast<const torch::optim::AdamParamState*>(s)) {
    return {torch::tensor(a->step()), a->exp_avg(), a->exp_avg_sq()};
  }
  if (const auto* w = dynamic_cast<const torch::optim::AdamWParamState*>(s)) {
    return {torch::tensor(w->step()), w->exp_avg(), w->exp_avg_sq()};
  }
  return {dynamic_cast<const torch::optim::SGDParamState&>(*s).momentum_buffer()};
}

void expect_identical(Net& a, const torch::optim::Optimizer& oa, Net& b, const torch::optim::Optimizer& ob) {
  const auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  size_t with_state = 0, trainable = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
    const auto sa = state_tensors(oa, pa[i]), sb = state_tensors(ob, pb[i]);
    ASSERT_EQ(sa.size(), sb.size()) << "state of parameter " << i;
    for (size_t k = 0; k < sa.size(); ++k) EXPECT_TRUE(torch::equal(sa[k], sb[k])) << "parameter " << i << " state " << k;
    with_state += !sa.empty();
    trainable += pa[i].requires_grad();
  }
  EXPECT_EQ(with_state, trainable);
}

const std::vector<Case> kCases{{"cnn", 0, "adam", false},
                               {"resnet", 20, "adamw", false},
                               {"fast", 0, "sgd", true},
                               {"cnn", 0, "sgd", false}};

TEST(Optimizers, ForeachStepsEqualTorchOptimToTheBitOnTheCpu) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.model + "/" + c.optimizer + (c.nesterov ? "/nesterov" : ""));
    auto ours = make_model(c), theirs = make_model(c);
    auto foreach = make_optimizer(train_config(c), *ours, StepKernels::kForeach);
    auto stock = make_optimizer(train_config(c), *theirs, StepKernels::kPerTensor);
    const auto before = ours->parameters().back().clone();
    for (int step = 0; step < 4; ++step) {
      // The first parameter has no gradient on the first step: its state
      // starts a step late (SGD's momentum buffer starts from that gradient).
      train_step(*ours, *foreach, step, step == 0);
      train_step(*theirs, *stock, step, step == 0);
    }
    EXPECT_FALSE(torch::equal(before, ours->parameters().back())) << "the steps changed nothing";
    expect_identical(*ours, *foreach, *theirs, *stock);
  }
}

TEST(Optimizers, ForeachOnCudaAgreesWithTorchOptim) {
  // Where the foreach ops run as multi-tensor kernels (kAuto's choice on a
  // GPU); these round differently, so agreement is to float precision.
  // Both optimisers step on the same gradients: two backward passes on a
  // GPU differ (TF32, atomics), and Adam's first steps turn those
  // differences into steps of the full learning rate.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.model + "/" + c.optimizer);
    auto ours = make_model(c, torch::kCUDA), theirs = make_model(c, torch::kCUDA);
    auto foreach = make_optimizer(train_config(c), *ours, StepKernels::kAuto);
    auto stock = make_optimizer(train_config(c), *theirs, StepKernels::kPerTensor);
    for (int step = 0; step < 4; ++step) {
      clear_gradients(*stock);
      train_step(*ours, *foreach, step, step == 0, [&] {
        const auto from = ours->parameters(), to = theirs->parameters();
        for (size_t i = 0; i < from.size(); ++i) {
          if (from[i].grad().defined()) to[i].mutable_grad() = from[i].grad().clone();
        }
        stock->step();
      });
    }
    const auto pa = ours->parameters(), pb = theirs->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_TRUE(torch::allclose(pa[i], pb[i], 1e-4, 1e-6)) << "parameter " << i << ": max difference "
                                                             << (pa[i] - pb[i]).abs().max().item<double>();
    }
  }
}

TEST(Optimizers, ForeachContinuesFromStateTorchOptimWrote) {
  // Checkpoints written before the foreach optimisers hold torch::optim's
  // state under its keys; a resumed run must find it, not start afresh.
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.model + "/" + c.optimizer);
    auto ours = make_model(c), theirs = make_model(c);
    auto stock = make_optimizer(train_config(c), *theirs, StepKernels::kPerTensor);
    for (int step = 0; step < 2; ++step) train_step(*theirs, *stock, step, false);

    {
      torch::NoGradGuard no_grad;
      const auto from = theirs->parameters();
      auto to = ours->parameters();
      for (size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
      const auto bufs_from = theirs->buffers();
      auto bufs_to = ours->buffers();
      for (size_t i = 0; i < bufs_to.size(); ++i) bufs_to[i].copy_(bufs_from[i]);
    }
    std::stringstream bytes;
    torch::serialize::OutputArchive out;
    stock->save(out);
    out.save_to(bytes);
    torch::serialize::InputArchive in;
    in.load_from(bytes);
    auto foreach = make_optimizer(train_config(c), *ours, StepKernels::kForeach);
    foreach->load(in);

    for (int step = 2; step < 4; ++step) {
      train_step(*ours, *foreach, step, false);
      train_step(*theirs, *stock, step, false);
    }
    expect_identical(*ours, *foreach, *theirs, *stock);
  }
}

TEST(Optimizers, ClipGradientsMatchesLibTorchsClipGradNorm) {
  // Both where the clip scales (max norm below the gradients' norm) and
  // where it leaves them as they are.
  for (double max_norm : {0.05, 1e6}) {
    SCOPED_TRACE(max_norm);
    const Case c{"resnet", 20, "sgd", false};
    auto ours = make_model(c), theirs = make_model(c);
    auto oa = make_optimizer(train_config(c), *ours), ob = make_optimizer(train_config(c), *theirs);
    train_step(*ours, *oa, 0, true);  // a step, then the gradients of the next
    train_step(*theirs, *ob, 0, true);
    for (auto* net : {&ours, &theirs}) {
      torch::manual_seed(7);
      auto x = torch::randn({8, 3, 32, 32});
      torch::nn::functional::cross_entropy((*net)->forward(x), torch::randint(0, 10, {8})).backward();
    }
    const auto before = ours->parameters().back().grad().clone();
    clip_gradients(ours->parameters(), max_norm);
    torch::nn::utils::clip_grad_norm_(theirs->parameters(), max_norm);
    const auto pa = ours->parameters(), pb = theirs->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      ASSERT_EQ(pa[i].grad().defined(), pb[i].grad().defined()) << i;
      if (pa[i].grad().defined()) EXPECT_TRUE(torch::equal(pa[i].grad(), pb[i].grad())) << "gradient " << i;
    }
    EXPECT_EQ(torch::equal(before, pa.back().grad()), max_norm > 1) << "clipping scaled when it should not, or not when it should";
  }
}

TEST(Optimizers, ClearGradientsLeavesNoGradient) {
  const Case c{"cnn", 0, "adam", false};
  auto model = make_model(c);
  auto optimizer = make_optimizer(train_config(c), *model);
  train_step(*model, *optimizer, 0, false);
  for (const auto& p : model->parameters()) ASSERT_TRUE(p.grad().defined());
  clear_gradients(*optimizer);
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

}  // namespace
}  // namespace cifar
