#include "training/callbacks/early_stopping.h"

#include <filesystem>
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "models/net.h"

namespace cifar {
namespace {

std::vector<torch::Tensor> weights_of(Net& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : model.buffers()) out.push_back(b.detach().clone());
  return out;
}

void set_weights(Net& model, const std::vector<torch::Tensor>& weights) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& p : model.parameters()) p.copy_(weights.at(i++));
  for (auto& b : model.buffers()) b.copy_(weights.at(i++));
}

std::string best_text(const std::optional<double>& best) { return best ? std::to_string(*best) : "none yet"; }

}  // namespace

void EarlyStopping::on_train_begin(TrainContext& ctx) {
  if (resumed_) {
    // A run that stopped early has ended: resuming it (a requeue script
    // always passes --resume) must not train on, unless a longer patience
    // now allows it.
    if (stopped_epoch_ > 0 && wait_ >= o_.patience) {
      ctx.request_stop("early stopping: the resumed run had already stopped at epoch " +
                       std::to_string(stopped_epoch_ + 1) + " (best " + o_.monitor.name + " " + best_text(best_) +
                       " at epoch " + std::to_string(best_epoch_ + 1) +
                       "; hint: a larger --early-stopping-patience trains on)");
    }
    stopped_epoch_ = 0;
    return;
  }
  wait_ = 0;
  stopped_epoch_ = 0;
  best_epoch_ = 0;
  best_.reset();
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) {
  auto current = o_.monitor.value(logs);
  if (!current) {
    if (ctx.is_writer()) {
      std::cerr << "warning: EarlyStopping monitors '" << o_.monitor.name << "', which this run does not log\n";
    }
    return;
  }
  if (epoch < o_.start_from_epoch) return;
  if (o_.restore_best_weights && best_weights_.empty() && !snapshot_in_file_) {
    best_weights_ = weights_of(ctx.model());
    best_epoch_ = epoch;
  }
  wait_ += 1;
  if (o_.monitor.improves(*current, best_)) {
    best_ = *current;
    best_epoch_ = epoch;
    if (o_.restore_best_weights) {
      best_weights_ = weights_of(ctx.model());
      snapshot_in_file_ = false;
    }
    if (!o_.baseline || o_.monitor.improved(*current, *o_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= o_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    ctx.request_stop("early stopping: " + o_.monitor.name + " has not improved for " + std::to_string(wait_) +
                     " epochs (best " + best_text(best_) + " at epoch " + std::to_string(best_epoch_ + 1) + ")");
  }
}

void EarlyStopping::on_train_end(const Logs&, TrainContext& ctx) {
  if (!o_.restore_best_weights) return;
  if (snapshot_in_file_ && !o_.best_weights_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(o_.best_weights_file, ec)) {
      if (ctx.is_writer()) {
        std::cerr << "warning: cannot restore the best weights (epoch " << best_epoch_ + 1 << "): "
                  << o_.best_weights_file << " is gone; keeping the last epoch's weights\n";
      }
      return;
    }
    auto data = read_checkpoint(o_.best_weights_file);
    load_model_state(data, ctx.model(), o_.best_weights_file);
  } else if (!best_weights_.empty()) {
    set_weights(ctx.model(), best_weights_);
  } else {
    return;
  }
  if (ctx.is_writer()) std::cout << "Restoring model weights from the end of the best epoch: " << best_epoch_ + 1 << "\n";
}

nlohmann::json EarlyStopping::state() const {
  return {{"wait", wait_},
          {"stopped_epoch", stopped_epoch_},
          {"best_epoch", best_epoch_},
          {"best", best_to_json(best_)},
          {"has_snapshot", !best_weights_.empty() || snapshot_in_file_}};
}

void EarlyStopping::load_state(const nlohmann::json& j) {
  wait_ = json_to_int(j, "wait");
  stopped_epoch_ = json_to_int(j, "stopped_epoch");
  best_epoch_ = json_to_int(j, "best_epoch");
  best_ = json_to_best(j.at("best"));
  snapshot_in_file_ = j.value("has_snapshot", false) && !o_.best_weights_file.empty();
  best_weights_.clear();
  resumed_ = true;
}

}  // namespace cifar
