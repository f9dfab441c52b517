// Keras 3's ReduceLROnPlateau, step for step: log the rate,
// count down cooldown, reset on improvement, otherwise wait and reduce by
// `factor` once `patience` epochs passed without improvement. LibTorch's
// own ReduceLROnPlateauScheduler reduces one epoch later, so not used.
// The first monitored value is the first best, even a NaN: Keras 3's
// ReduceLROnPlateau is a MonitorCallback whose best starts as None (its
// first 3.x releases started at +-inf, as tf-keras 2.15 did; see
// Monitor::improves).
#pragma once
#include "training/callback.h"
#include "training/callbacks/monitor.h"

namespace cifar {

class ReduceLROnPlateau : public Callback {
 public:
  struct Options {
    Monitor monitor{"val_loss", "auto", 1e-4};
    double factor = 0.1;
    int patience = 10;
    int cooldown = 0;
    double min_lr = 0;
  };
  explicit ReduceLROnPlateau(Options options);

  std::string name() const override { return "reduce_lr_on_plateau"; }
  void on_train_begin(TrainContext&) override;
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& j) override;

 private:
  bool in_cooldown() const { return cooldown_counter_ > 0; }
  Options o_;
  std::optional<double> best_;  // none until the first monitored value
  int wait_ = 0;
  int cooldown_counter_ = 0;
  bool resumed_ = false;
};

}  // namespace cifar
