// Keras ModelCheckpoint: save the whole run (weights, optimiser, callback
// states) to `path` every epoch, or only on strict improvement of the
// monitored metric (save_best_only). The original's best + latest pair is
// two instances.
//
// As Keras 3 (keras/src/callbacks/model_checkpoint.py, _should_save_model):
// the first monitored value always saves, even a NaN (best starts as None;
// see Monitor::improves), and with save_best_only an epoch whose logs lack
// the monitor warns "Can save best model only with <monitor> available."
// and still saves. tf-keras 2.15 and Keras 3.0 warned "..., skipping." and
// kept the previous file.
#pragma once
#include "training/callback.h"
#include "training/callbacks/monitor.h"

namespace cifar {

class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(std::string path, Monitor monitor, bool save_best_only)
      : path_(std::move(path)), monitor_(std::move(monitor)), save_best_only_(save_best_only) {}

  std::string name() const override { return save_best_only_ ? "checkpoint_best" : "checkpoint_latest"; }
  void on_train_begin(TrainContext&) override {
    if (!resumed_) best_.reset();
  }
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  nlohmann::json state() const override { return {{"best", best_to_json(best_)}}; }
  void load_state(const nlohmann::json& j) override {
    best_ = json_to_best(j.at("best"));
    resumed_ = true;
  }
  std::optional<double> best() const { return best_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Monitor monitor_;
  bool save_best_only_;
  std::optional<double> best_;  // none until the first monitored value
  bool resumed_ = false;
  bool warned_missing_ = false;
};

}  // namespace cifar
