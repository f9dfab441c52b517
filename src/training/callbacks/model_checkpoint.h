// Keras ModelCheckpoint: save the whole run (weights, optimiser, callback
// states) to `path` every epoch, or only on strict improvement of the
// monitored metric (save_best_only). The original's best + latest pair is
// two instances.
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
    if (!resumed_) best_ = monitor_.worst();
  }
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  nlohmann::json state() const override { return {{"best", double_to_json(best_)}}; }
  void load_state(const nlohmann::json& j) override {
    best_ = json_to_double(j.at("best"));
    resumed_ = true;
  }
  double best() const { return best_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Monitor monitor_;
  bool save_best_only_;
  double best_ = 0;
  bool resumed_ = false;
};

}  // namespace cifar
