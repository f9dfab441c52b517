#include "training/callbacks/factory.h"

#include <unistd.h>

#include <iostream>

#include "training/callbacks/csv_logger.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/history.h"
#include "training/callbacks/lookahead.h"
#include "training/callbacks/lr_schedule.h"
#include "training/callbacks/model_checkpoint.h"
#include "training/callbacks/monitor.h"
#include "training/callbacks/progress.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "training/callbacks/run_length.h"
#include "training/callbacks/tensorboard_callback.h"
#include "training/callbacks/terminate_on_nan.h"
#include "training/callbacks/time_budget.h"

namespace cifar {
namespace {

std::shared_ptr<Callback> make_schedule(const TrainConfig& t) {
  if (t.lr_schedule == "plateau") {
    ReduceLROnPlateau::Options o;
    o.monitor = Monitor{t.monitor, "auto", t.plateau_min_delta};
    o.cooldown = t.plateau_cooldown;
    o.factor = t.plateau_factor;
    o.patience = t.plateau_patience;
    o.min_lr = t.min_lr;
    return std::make_shared<ReduceLROnPlateau>(o);
  }
  if (t.lr_schedule == "constant") return nullptr;
  LearningRateSchedule::Options o;
  o.kind = t.lr_schedule == "cosine"     ? LearningRateSchedule::Kind::kCosine
           : t.lr_schedule == "onecycle" ? LearningRateSchedule::Kind::kOneCycle
                                         : LearningRateSchedule::Kind::kStep;
  o.base_lr = t.learning_rate;
  o.warmup_epochs = t.warmup_epochs;
  o.step_size = t.step_size;
  o.gamma = t.step_gamma;
  return std::make_shared<LearningRateSchedule>(o);
}

}  // namespace

RunCallbacks make_callbacks(const Config& config, const RunFolder& folder, const std::filesystem::path& resumed_run) {
  const auto& t = config.train;
  RunCallbacks cbs;
  auto add = [&](std::shared_ptr<Callback> cb) {
    if (cb) cbs.all.push_back(std::move(cb));
  };
  const Monitor monitor{t.monitor, "auto", 0.0};
  // The epoch's line first, as Keras' progress bar: a callback's message
  // about the epoch (a reduced learning rate, a saved best) follows it.
  add(std::make_shared<ProgressBar>(std::cout, ::isatty(1) != 0));
  // The budget's corrections at each epoch's end come before the schedule
  // reads the epochs and the checkpoints record them.
  if (parse_duration(t.time_budget)) {
    cbs.budget = std::make_shared<TimeBudget>(std::cout);
    add(cbs.budget);
  } else {
    add(std::make_shared<RunLengthWarning>(std::cout));
  }
  add(make_schedule(t));
  if (t.lookahead) add(std::make_shared<Lookahead>());
  add(std::make_shared<TerminateOnNaN>());
  if (t.early_stopping_patience > 0) {
    EarlyStopping::Options o;
    o.monitor = Monitor{t.monitor, "auto", t.early_stopping_min_delta};
    o.patience = t.early_stopping_patience;
    o.baseline = parse_number(t.early_stopping_baseline);
    o.start_from_epoch = t.early_stopping_start_epoch;
    o.restore_best_weights = t.restore_best_weights;
    o.best_weights_file = folder.best_checkpoint().string();
    add(std::make_shared<EarlyStopping>(o));
  }
  cbs.history = std::make_shared<History>(folder.history_file().string());
  add(cbs.history);
  const auto resumed_logs = resumed_run.empty() ? std::filesystem::path() : RunFolder(resumed_run).logs();
  add(std::make_shared<CSVLogger>(folder.logs(), ',', resumed_logs));
  add(std::make_shared<TensorBoardCallback>(folder.logs(), t.log_every, resumed_logs));
  // Checkpoints last, so they capture every other callback's updated state.
  add(std::make_shared<ModelCheckpoint>(folder.best_checkpoint().string(), monitor, /*save_best_only=*/true));
  add(std::make_shared<ModelCheckpoint>(folder.latest_checkpoint().string(), monitor, false));
  return cbs;
}

}  // namespace cifar
