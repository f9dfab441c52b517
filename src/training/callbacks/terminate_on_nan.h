// Keras TerminateOnNaN: stop as soon as the loss is NaN or infinite. Unlike
// Keras, the epoch is abandoned at once, so no checkpoint of the broken
// weights overwrites the last good one. "batch_loss" covers the steps since
// the trainer last read the loss (every step on a CPU, a few tenths of a
// second's worth on a GPU), hence "by step".
#pragma once
#include <cmath>

#include "training/callback.h"

namespace cifar {

class TerminateOnNaN : public Callback {
 public:
  std::string name() const override { return "terminate_on_nan"; }
  void on_batch_end(int64_t step_in_epoch, const Logs& running, TrainContext& ctx) override {
    auto it = running.find("batch_loss");
    if (it != running.end() && !std::isfinite(it->second)) {
      ctx.request_stop("loss became " + std::string(std::isnan(it->second) ? "NaN" : "infinite") +
                       " by step " + std::to_string(step_in_epoch + 1) +
                       " (hint: lower --learning-rate, or set --grad-clip)");
    }
  }
};

}  // namespace cifar
