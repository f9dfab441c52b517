// Keras' TensorBoard callback, writing under <logs_dir>/tensorboard/:
//   train/        epoch_<metric> at step = epoch (epoch_loss, epoch_accuracy,
//                 epoch_top3_accuracy, epoch_learning_rate), a histogram of
//                 every parameter each epoch, and once a grid of augmented
//                 training samples;
//   validation/   epoch_<metric> for the val_ metrics, "val_" dropped;
//   train_batch/  batch_<metric> from the running logs every `update_freq`
//                 optimiser steps, at the global step (1-based, as Keras):
//                 batch_loss, batch_accuracy, batch_top3_accuracy (means
//                 over the epoch so far, as Keras), and batch_loss_recent
//                 (the trainer's batch_loss: the mean loss of the steps
//                 since the trainer last read its sums).
// Every run folder gets a SessionLog START at the first step this run logs
// (the epoch for train/ and validation/, the global step for train_batch/),
// fresh or resumed: TensorBoard ignores the first START in a folder and at
// each later one drops the points with step >= N, so a resumed run hides
// what the killed run wrote after its checkpoint.
// Keras keeps batch_* in train/; we give them their own run because one N
// cannot serve epochs and global steps in one run.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "training/callback.h"

namespace cifar {

class TensorBoardWriter;

class TensorBoardCallback : public Callback {
 public:
  // update_freq: batch scalars every N optimiser steps (0 = off).
  // resumed_logs_dir: the logs folder of the run a resume continues; when it
  // is another folder and this one has no TensorBoard runs yet, the run's
  // event files are copied here first, so the curves stay whole.
  explicit TensorBoardCallback(std::filesystem::path logs_dir, int64_t update_freq = 0,
                               std::filesystem::path resumed_logs_dir = {});
  ~TensorBoardCallback() override;

  std::string name() const override { return "tensorboard"; }
  void on_train_begin(TrainContext& ctx) override;
  void on_epoch_begin(int epoch, TrainContext& ctx) override;
  bool wants_batch_logs(int64_t step_in_epoch, const TrainContext& ctx) const override;
  void on_batch_end(int64_t step_in_epoch, const Logs& running, TrainContext& ctx) override;
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  void on_train_end(const Logs& last, TrainContext& ctx) override;
  // {"last_epoch", "last_batch_step"}: what was logged, for people reading a
  // checkpoint. Resuming needs only to know that it resumes (load_state was
  // called): the START steps come from the resumed run itself.
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;

  // Tag of a parameter's histogram: its name with '.' as '/', so TensorBoard
  // groups a model's histograms by top-level module, as Keras' "layer/kernel".
  static std::string histogram_tag(const std::string& parameter_name);
  // Tag of a running-log key in train_batch/: "batch_" + key, except that a
  // key already named batch_* becomes <key>_recent (see the top of the file).
  static std::string batch_tag(const std::string& key);

 private:
  // Before the first epoch-scale point of this run: START at the first
  // epoch it logs; then the sample grid.
  void begin_epoch_scale(int epoch, TrainContext& ctx);
  void write_samples(int epoch, TrainContext& ctx);
  void flush_all();
  void carry_resumed_runs();

  std::filesystem::path root_, resumed_root_;
  int64_t update_freq_;
  std::unique_ptr<TensorBoardWriter> train_, validation_, batch_;
  bool resumed_ = false;
  bool epoch_scale_begun_ = false;
  bool samples_written_ = false;
  int first_epoch_ = 0;  // the first epoch this run logs (its START step)
  int last_epoch_ = -1;
  int64_t last_batch_step_ = -1;
};

}  // namespace cifar
