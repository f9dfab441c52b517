#include "training/callbacks/tensorboard_callback.h"

#include <iostream>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "models/net.h"
#include "reporting/tensorboard.h"

namespace cifar {
namespace fs = std::filesystem;

TensorBoardCallback::TensorBoardCallback(fs::path logs_dir, int64_t update_freq, fs::path resumed_logs_dir)
    : root_(std::move(logs_dir) / "tensorboard"),
      resumed_root_(resumed_logs_dir.empty() ? fs::path() : resumed_logs_dir / "tensorboard"),
      update_freq_(update_freq) {
  check_input(update_freq >= 0, "TensorBoard update_freq must be >= 0 (0 = per epoch only)");
}

TensorBoardCallback::~TensorBoardCallback() = default;

std::string TensorBoardCallback::histogram_tag(const std::string& parameter_name) {
  std::string tag = parameter_name;
  std::replace(tag.begin(), tag.end(), '.', '/');
  return tag;
}

std::string TensorBoardCallback::batch_tag(const std::string& key) {
  // The trainer's own "batch_loss" (the loss of the steps since its last
  // reading) would otherwise come out as "batch_batch_loss", and cannot
  // take "batch_loss", which is Keras' running mean over the epoch ("loss").
  const std::string prefix = "batch_";
  if (key.rfind(prefix, 0) == 0) return key + "_recent";
  return prefix + key;
}

void TensorBoardCallback::carry_resumed_runs() {
  std::error_code ec;
  if (!resumed_ || resumed_root_.empty() || !fs::is_directory(resumed_root_, ec) ||
      fs::equivalent(root_, resumed_root_, ec)) {
    return;
  }
  auto names = [](const fs::path& dir) {
    std::set<std::string> found;
    for (const auto& file : list_event_files(dir)) found.insert(file.filename().string());
    return found;
  };
  // Never into a folder that has event files of its own: files there that
  // are not the resumed run's are another run's. Its copies are not: a
  // resume killed while copying (a kill -9 between two files) is finished
  // when it is run again, file by file, instead of leaving the folder with
  // some of the run's curves. One folder level at a time: no recursive walk
  // (see remove_tree in common/atomic_file.h).
  for (const char* run : {"train", "validation", "train_batch"}) {
    const auto resumed = names(resumed_root_ / run);
    for (const auto& name : names(root_ / run)) {
      if (!resumed.count(name)) return;
    }
  }
  bool copied = false;
  for (const char* run : {"train", "validation", "train_batch"}) {
    const auto present = names(root_ / run);
    for (const auto& from : list_event_files(resumed_root_ / run)) {
      if (present.count(from.filename().string())) continue;
      ensure_dir(root_ / run);
      write_file_atomic(root_ / run / from.filename(), read_file(from));
      copied = true;
    }
  }
  if (copied) {
    std::cout << "Copied the run's TensorBoard logs " << resumed_root_.string() << " to " << root_.string() << "\n";
  }
}

void TensorBoardCallback::on_train_begin(TrainContext& ctx) {
  if (!ctx.is_writer()) return;
  carry_resumed_runs();
  train_ = std::make_unique<TensorBoardWriter>(root_ / "train");
  // As in Keras, the validation run appears with the first val_ value (a
  // run without validation has none), but a resumed run must still hide
  // the points the killed run wrote there after its checkpoint; likewise
  // for batch points when this run logs none.
  if (resumed_ && fs::exists(root_ / "validation")) {
    validation_ = std::make_unique<TensorBoardWriter>(root_ / "validation");
  }
  const bool stale_batches = resumed_ && fs::exists(root_ / "train_batch");
  if (update_freq_ > 0 || stale_batches) {
    batch_ = std::make_unique<TensorBoardWriter>(root_ / "train_batch");
  }
  // global_step() steps are done; the first batch point of this run is the
  // next one, and the points up to the checkpoint's step stay valid.
  // Written by a fresh run too: TensorBoard ignores the first START in a
  // folder, so a resumed run's START purges only if the fresh one wrote
  // one (tensorboard's EventAccumulator._CheckForRestartAndMaybePurge).
  if (batch_) batch_->add_session_start(ctx.global_step() + 1);
  epoch_scale_begun_ = false;
  samples_written_ = false;
  flush_all();
}

void TensorBoardCallback::begin_epoch_scale(int epoch, TrainContext& ctx) {
  if (epoch_scale_begun_) return;
  epoch_scale_begun_ = true;
  // The epoch being started (or, after a mid-epoch checkpoint, continued)
  // is the first one this run logs: the killed run's points from it on are
  // stale. Taken from the hook rather than from global_step / steps_per_epoch
  // so it holds however the trainer counts a partial epoch. A fresh run
  // writes its START as well (see on_train_begin).
  first_epoch_ = epoch;
  train_->add_session_start(epoch);
  if (validation_) validation_->add_session_start(epoch);
  write_samples(epoch, ctx);
}

void TensorBoardCallback::write_samples(int epoch, TrainContext& ctx) {
  if (samples_written_) return;
  // Before the first batch the trainer may have no samples yet: try again at
  // the end of the epoch.
  const torch::Tensor images = ctx.sample_images();
  if (!images.defined() || images.numel() == 0) return;
  train_->add_image("augmented_samples", tile_images(images, 8, 64), epoch);
  samples_written_ = true;
}

void TensorBoardCallback::on_epoch_begin(int epoch, TrainContext& ctx) {
  if (!train_) return;
  begin_epoch_scale(epoch, ctx);
}

// Keras counts steps from 1 and logs when step % update_freq == 0; the
// last-step check keeps micro-batches of one step from logging twice.
bool TensorBoardCallback::wants_batch_logs(int64_t, const TrainContext& ctx) const {
  const int64_t step = ctx.global_step();
  return batch_ && update_freq_ > 0 && step > 0 && step % update_freq_ == 0 && step != last_batch_step_;
}

void TensorBoardCallback::on_batch_end(int64_t step_in_epoch, const Logs& running, TrainContext& ctx) {
  if (!wants_batch_logs(step_in_epoch, ctx) || running.empty()) return;
  const int64_t step = ctx.global_step();
  for (const auto& [key, value] : running) batch_->add_scalar(batch_tag(key), value, step);
  last_batch_step_ = step;
  // One write every update_freq steps costs nothing and keeps the curve live.
  batch_->flush();
}

void TensorBoardCallback::on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) {
  if (!train_) return;
  begin_epoch_scale(epoch, ctx);
  // Keras 3 logs the rate as "learning_rate"; our trainer's "lr" is the same
  // value, written once under Keras' tag.
  const bool has_learning_rate = logs.count("learning_rate") > 0;
  for (const auto& [key, value] : logs) {
    if (key.rfind("val_", 0) == 0) {
      if (!validation_) {
        validation_ = std::make_unique<TensorBoardWriter>(root_ / "validation");
        validation_->add_session_start(first_epoch_);
      }
      validation_->add_scalar("epoch_" + key.substr(4), value, epoch);
    } else if (key == "lr") {
      if (!has_learning_rate) train_->add_scalar("epoch_learning_rate", value, epoch);
    } else {
      train_->add_scalar("epoch_" + key, value, epoch);
    }
  }
  for (const auto& p : ctx.model().named_parameters(/*recurse=*/true)) {
    train_->add_histogram(histogram_tag(p.key()), p.value(), epoch);
  }
  write_samples(epoch, ctx);
  last_epoch_ = epoch;
  flush_all();
}

void TensorBoardCallback::on_train_end(const Logs&, TrainContext&) {
  flush_all();
  train_.reset();
  validation_.reset();
  batch_.reset();
}

void TensorBoardCallback::flush_all() {
  for (auto* w : {train_.get(), validation_.get(), batch_.get()}) {
    if (w) w->flush();
  }
}

nlohmann::json TensorBoardCallback::state() const {
  return {{"last_epoch", last_epoch_}, {"last_batch_step", last_batch_step_}};
}

void TensorBoardCallback::load_state(const nlohmann::json& state) {
  try {
    last_epoch_ = state.value("last_epoch", -1);
    last_batch_step_ = state.value("last_batch_step", int64_t{-1});
  } catch (const nlohmann::json::exception& e) {
    throw UserError(std::string("the checkpoint's tensorboard state is malformed: ") + e.what() +
                    " (hint: resume from a checkpoint this version wrote)");
  }
  resumed_ = true;
}

}  // namespace cifar
