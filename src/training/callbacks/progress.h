// Keras-like progress: on a terminal, one bar per epoch redrawn in place
// (step, ETA, running loss and accuracy, images/s); otherwise (logs, CI,
// pipes) exactly one line per epoch so files stay readable.
#pragma once
#include <chrono>
#include <ostream>

#include "training/callback.h"

namespace cifar {

class ProgressBar : public Callback {
 public:
  ProgressBar(std::ostream& out, bool interactive) : out_(out), interactive_(interactive) {}
  std::string name() const override { return "progress"; }
  void on_epoch_begin(int epoch, TrainContext& ctx) override;
  bool wants_batch_logs(int64_t step_in_epoch, const TrainContext& ctx) const override;
  void on_batch_end(int64_t step_in_epoch, const Logs& running, TrainContext& ctx) override;
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;

 private:
  std::ostream& out_;
  bool interactive_;
  std::chrono::steady_clock::time_point epoch_start_, last_draw_;
  int64_t images_ = 0;
};

}  // namespace cifar
