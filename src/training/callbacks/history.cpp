#include "training/callbacks/history.h"

#include "common/atomic_file.h"
#include "common/json_text.h"
#include "training/callbacks/monitor.h"

namespace cifar {

void History::on_epoch_end(int, Logs& logs, TrainContext& ctx) {
  epochs_.push_back(logs);
  if (!path_.empty() && ctx.is_writer()) write_file_atomic(path_, json_text(to_json(), 2) + "\n");
}

nlohmann::json History::to_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < epochs_.size(); ++i) {
    nlohmann::json row = {{"epoch", i + 1}};
    for (const auto& [k, v] : epochs_[i]) row[k] = double_to_json(v);
    out.push_back(row);
  }
  return out;
}

void History::load_state(const nlohmann::json& j) {
  epochs_.clear();
  for (const auto& row : j) {
    Logs logs;
    for (const auto& [k, v] : row.items()) {
      if (k != "epoch") logs[k] = json_to_double(v);
    }
    epochs_.push_back(logs);
  }
}

}  // namespace cifar
