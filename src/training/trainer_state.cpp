// The trainer's state in checkpoints: what a run writes (its position,
// totals, every callback's state and tensors) and how a resume takes it
// back. Checked by plan_run before a trainer exists (checkpoint/resume.h).
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/resume.h"
#include "common/error.h"
#include "config/cli.h"
#include "training/trainer.h"

namespace cifar {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

RunTotals Trainer::totals() const {
  RunTotals t = done_;
  // A checkpoint inside an epoch (a stop signal) counts its steps so far.
  if (in_batch_loop_) {
    t.train_seconds += seconds_since(epoch_start_);
    t.images_trained += images_trained_ - images_at_epoch_start_;
  }
  t.wall_seconds = earlier_wall_seconds_ + seconds_since(fit_start_);
  return t;
}

nlohmann::json Trainer::run_state() const {
  // An epoch is done once its end (validation, callbacks) runs. A stop on
  // its last step saves it with every step taken and its end still to run,
  // which the resumed run then runs: nothing is skipped, and the stop is as
  // quick as at any other step.
  const bool epoch_done = in_epoch_end_;
  nlohmann::json meta;
  meta["config"] = config_to_json(config_);
  meta["epoch"] = epoch_done ? epoch_ + 1 : epoch_;
  meta["step_in_epoch"] = epoch_done ? 0 : step_in_epoch_;
  meta["global_step"] = global_step_;
  meta["learning_rate"] = learning_rate();
  meta["world_size"] = dist_.world_size();
  // Reductions split by thread count, so a bit-exact resume needs the
  // count the run trained with (plan_run takes it unless --threads says).
  meta["threads"] = at::get_num_threads();
  const RunTotals t = totals();
  meta["totals"] = {{"train_seconds", t.train_seconds}, {"wall_seconds", t.wall_seconds},
                    {"images_trained", t.images_trained}};
  nlohmann::json callbacks = nlohmann::json::object();
  for (const auto& cb : callbacks_) callbacks[cb->name()] = cb->state();
  meta["callbacks"] = callbacks;
  return meta;
}

void Trainer::save_checkpoint(const std::string& path) {
  dist_.sync_buffers();
  auto meta = run_state();
  // The partial epoch's sums are global, so a run can resume with another
  // number of processes; every rank takes part in the reduction.
  auto partial = epoch_sums_.read().to_tensor();
  dist_.all_reduce_sum(partial);
  if (meta["step_in_epoch"].get<int64_t>() > 0) {
    auto p = MetricSums::from_tensor(partial);
    meta["partial"] = {p.loss_sum, p.correct, p.top3, p.count};
  }
  NamedTensors tensors;
  for (const auto& cb : callbacks_) {
    for (auto& [name, t] : cb->tensor_state()) tensors[cb->name() + "." + name] = t;
  }
  if (is_writer()) cifar::save_checkpoint(path, *model_, spec_, optimizer_.get(), meta, tensors);
  dist_.barrier();
}

void Trainer::resume(const StartPoint& start) {
  const CheckpointData& data = *start.checkpoint;
  const ResumePoint& point = *start.resume;
  load_model_state(data, *model_, start.path);
  load_optimizer_state(data, *optimizer_, start.path, device_);
  start_epoch_ = point.epoch;
  start_step_ = point.step_in_epoch;
  global_step_ = point.global_step;
  done_ = {point.train_seconds, 0, point.images_trained};
  earlier_wall_seconds_ = point.wall_seconds;
  epoch_sums_.reset(device_);
  if (point.partial && is_writer()) {
    const auto& p = *point.partial;
    epoch_sums_.assign(MetricSums{p[0], p[1], p[2], p[3]});
  }
  const NamedTensors tensors = read_named_tensors(data, start.path);
  try {
    for (auto& cb : callbacks_) {
      if (point.callbacks.contains(cb->name())) cb->load_state(point.callbacks.at(cb->name()));
      const std::string prefix = cb->name() + ".";
      NamedTensors own;
      for (const auto& [name, t] : tensors) {
        if (name.rfind(prefix, 0) == 0) own[name.substr(prefix.size())] = t.to(device_);
      }
      if (!own.empty()) cb->load_tensor_state(own);
    }
  } catch (const nlohmann::json::exception& e) {
    throw UserError("checkpoint " + start.path + " lacks the training state needed to resume: " + e.what());
  }
  set_learning_rate(point.learning_rate);
  if (start_step_ > steps_per_epoch_) {
    throw UserError("checkpoint " + start.path + " stopped at step " + std::to_string(start_step_) +
                    " of an epoch, but this run has " + std::to_string(steps_per_epoch_) +
                    " steps per epoch (hint: resume with the same --batch-size and data limits)");
  }
  epoch_ = start_epoch_;
  step_in_epoch_ = start_step_;
  if (is_writer()) {
    std::cout << "Resuming from " << start.path << " at epoch " << start_epoch_ + 1 << ", step " << start_step_
              << "\n";
    if (start_epoch_ >= config_.train.epochs) {
      std::cout << "The run finished its " << start_epoch_ << " epochs: nothing left to train (hint: a larger --epochs "
                << "trains on)\n";
    }
  }
}

}  // namespace cifar
