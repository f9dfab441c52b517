// Keras 3 EarlyStopping: stop when the monitored metric has not improved
// for `patience` epochs; optionally restore the best weights at the end
// (Keras 3 restores whenever a snapshot exists, not only after a stop).
// The first monitored value is the first best, even a NaN (Keras 3's
// `best = None`; tf-keras 2.15 started at +-inf: see Monitor::improves).
#pragma once
#include "training/callback.h"
#include "training/callbacks/monitor.h"

namespace cifar {

class EarlyStopping : public Callback {
 public:
  struct Options {
    Monitor monitor;
    int patience = 15;
    std::optional<double> baseline;
    bool restore_best_weights = false;
    int start_from_epoch = 0;
    // Where the best weights can be re-read after a resume: the snapshot
    // itself is not in the checkpoint, but ModelCheckpoint's best file holds
    // the same weights when both use the same monitor.
    std::string best_weights_file;
  };
  explicit EarlyStopping(Options options) : o_(std::move(options)) {}

  std::string name() const override { return "early_stopping"; }
  void on_train_begin(TrainContext& ctx) override;
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  void on_train_end(const Logs& last, TrainContext& ctx) override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& j) override;

  int stopped_epoch() const { return stopped_epoch_; }
  int best_epoch() const { return best_epoch_; }
  std::optional<double> best() const { return best_; }
  int wait() const { return wait_; }

 private:
  Options o_;
  int wait_ = 0;
  int stopped_epoch_ = 0;
  int best_epoch_ = 0;
  std::optional<double> best_;  // none until the first monitored value
  bool resumed_ = false;
  bool snapshot_in_file_ = false;  // after a resume, before a new improvement
  std::vector<torch::Tensor> best_weights_;
};

}  // namespace cifar
