// The one seam between the training loop and everything that watches it:
// early stopping, checkpoints, LR schedules, CSV, TensorBoard, progress and
// history are all Callbacks receiving the same (epoch/step, logs). Hooks run
// on every rank (decisions use reduced metrics, so ranks agree); sinks that
// write files check ctx.is_writer().
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint/checkpoint.h"
#include "metrics/metric_sums.h"

namespace cifar {

class Net;

// What a callback may see and steer.
class TrainContext {
 public:
  virtual ~TrainContext() = default;
  virtual Net& model() = 0;
  virtual double learning_rate() const = 0;
  virtual void set_learning_rate(double lr) = 0;
  virtual void request_stop(const std::string& reason) = 0;
  virtual bool is_writer() const = 0;            // rank 0
  virtual int epochs() const = 0;                // planned epochs
  // Changes the planned epochs (the time budget's correction); schedules
  // read epochs() every step, so they stretch or shrink from here.
  virtual void set_epochs(int epochs) = 0;
  // Wall time since this fit began, up to the end of the last epoch's
  // validation, the slowest rank's; read in on_epoch_end.
  virtual double fit_seconds() const = 0;
  virtual int64_t steps_per_epoch() const = 0;   // optimiser steps per epoch
  virtual int64_t global_step() const = 0;       // optimiser steps taken so far
  virtual int64_t batch_size() const = 0;        // global batch
  // Writes a complete checkpoint of the run as it stands to `path`.
  virtual void save_checkpoint(const std::string& path) = 0;
  // A batch of augmented training images as the model sees them (for
  // previews), uint8 [B,3,H,W] on CPU; may be undefined before training.
  virtual torch::Tensor sample_images() const = 0;
};

class Callback {
 public:
  virtual ~Callback() = default;
  // Key under which this callback's state is kept in checkpoints.
  virtual std::string name() const = 0;
  virtual void on_train_begin(TrainContext&) {}
  virtual void on_epoch_begin(int /*epoch*/, TrainContext&) {}
  virtual void on_batch_begin(int64_t /*step_in_epoch*/, TrainContext&) {}
  // `running` holds the epoch's running metrics and "batch_loss" (the mean
  // loss of the steps since the last reading) on steps where the trainer
  // read them from the device, and is empty on the others. A reading makes
  // the host wait for the GPU, so the trainer reads when a callback asks
  // here (ctx.global_step() already counts this step), at an epoch's last
  // step, when a stop signal came, and at least every few tenths of a
  // second; with several ranks, every step.
  virtual bool wants_batch_logs(int64_t /*step_in_epoch*/, const TrainContext&) const { return false; }
  virtual void on_batch_end(int64_t /*step_in_epoch*/, const Logs& /*running*/, TrainContext&) {}
  // `logs` holds the epoch's train and val metrics and "lr".
  virtual void on_epoch_end(int /*epoch*/, Logs& /*logs*/, TrainContext&) {}
  virtual void on_train_end(const Logs& /*last*/, TrainContext&) {}
  // State saved in checkpoints so a resumed run continues exactly: JSON,
  // and tensors by name (the lookahead's slow weights).
  virtual nlohmann::json state() const { return nlohmann::json::object(); }
  virtual void load_state(const nlohmann::json&) {}
  virtual NamedTensors tensor_state() const { return {}; }
  virtual void load_tensor_state(const NamedTensors&) {}
};

}  // namespace cifar
