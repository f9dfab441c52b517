// Keras' History: every epoch's logs, kept in checkpoints so a resumed run
// has the whole story, and written to results/training_history.json after
// each epoch (atomically) when a path is given.
#pragma once
#include "training/callback.h"

namespace cifar {

class History : public Callback {
 public:
  explicit History(std::string json_path = "") : path_(std::move(json_path)) {}
  std::string name() const override { return "history"; }
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  nlohmann::json state() const override { return to_json(); }
  void load_state(const nlohmann::json& j) override;

  const std::vector<Logs>& epochs() const { return epochs_; }
  nlohmann::json to_json() const;  // [{"epoch": 1, "loss": ..., ...}, ...]

 private:
  std::string path_;
  std::vector<Logs> epochs_;
};

}  // namespace cifar
