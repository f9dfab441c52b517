// A TrainContext the reporting tests drive by hand: a one-layer model, a
// settable step and rank, and scripted epochs, so callbacks see exactly
// what a trainer would hand them without training anything.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "models/net.h"
#include "training/callback.h"

namespace cifar::testing {

class TinyNet : public Net {
 public:
  TinyNet() : fc(register_module("fc", torch::nn::Linear(12, 3))) {}
  torch::Tensor forward(torch::Tensor x) override { return fc(x.flatten(1)); }
  std::string head_name() const override { return "fc"; }
  torch::nn::Linear fc;
};

class FakeTrainContext : public TrainContext {
 public:
  std::shared_ptr<TinyNet> net = std::make_shared<TinyNet>();
  bool writer = true;
  int planned_epochs = 4;
  int64_t per_epoch = 4;
  int64_t step = 0;
  double lr = 0.01;
  double seconds = 0;  // what fit_seconds() returns
  torch::Tensor samples;  // what sample_images() returns

  Net& model() override { return *net; }
  double learning_rate() const override { return lr; }
  void set_learning_rate(double v) override { lr = v; }
  void request_stop(const std::string& reason) override {
    ADD_FAILURE() << "a logging callback asked to stop: " << reason;
  }
  bool is_writer() const override { return writer; }
  int epochs() const override { return planned_epochs; }
  void set_epochs(int epochs) override { planned_epochs = epochs; }
  double fit_seconds() const override { return seconds; }
  int64_t steps_per_epoch() const override { return per_epoch; }
  int64_t global_step() const override { return step; }
  int64_t batch_size() const override { return 8; }
  void save_checkpoint(const std::string& path) override {
    ADD_FAILURE() << "a logging callback asked for a checkpoint at " << path;
  }
  torch::Tensor sample_images() const override { return samples; }
};

// Metrics that tell runs, epochs and steps apart, all exact in float32 so
// TensorBoard's float simple_value compares equal.
inline Logs epoch_logs(int run, int epoch) {
  const double base = run * 100 + epoch;
  return {{"loss", 1.0 + base / 4},          {"accuracy", 0.5 + epoch / 16.0},
          {"top3_accuracy", 0.75 + epoch / 32.0}, {"val_loss", 2.0 + base / 8},
          {"val_accuracy", 0.25 + epoch / 64.0},  {"val_top3_accuracy", 0.5 + run / 4.0},
          {"lr", 0.125 / (epoch + 1)}};
}
inline Logs batch_logs(int run, int64_t global_step) {
  return {{"loss", run * 1000.0 + global_step}, {"accuracy", global_step / 1024.0}};
}

// Runs epochs [first, last) through `cb` as a trainer would, steps and all;
// `after_epoch(epoch)` runs after each epoch's end hook.
inline void run_epochs(Callback& cb, FakeTrainContext& ctx, int run, int first, int last,
                       const std::function<void(int)>& after_epoch = {}) {
  for (int epoch = first; epoch < last; ++epoch) {
    cb.on_epoch_begin(epoch, ctx);
    for (int64_t s = 0; s < ctx.per_epoch; ++s) {
      cb.on_batch_begin(s, ctx);
      ++ctx.step;
      cb.on_batch_end(s, batch_logs(run, ctx.step), ctx);
    }
    Logs logs = epoch_logs(run, epoch);
    cb.on_epoch_end(epoch, logs, ctx);
    if (after_epoch) after_epoch(epoch);
  }
}

}  // namespace cifar::testing
