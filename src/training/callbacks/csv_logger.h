// Keras' CSVLogger: one row per epoch in <logs_dir>/training_log_<time>.csv,
// "epoch" (0-based) then the metric names sorted (and, when the first epoch
// has no val_ metric, a val_<name> column for each, as Keras 3 adds), the
// column set fixed at the first epoch, "NA" for a missing value, numbers as
// Python's str(float) (csv_number), the header only when the file is new or
// empty, every row handed to the OS as the epoch ends.
//
// Beyond Keras: a resumed run appends to the file the first run created (its
// name and columns are in the checkpointed state) and first drops the rows
// that the killed run wrote after the checkpoint, so each epoch appears once.
// Resumed into another output folder, it first copies that file over from
// the first run's logs folder, so the new folder's log holds every epoch.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "training/callback.h"

namespace cifar {

class CSVLogger : public Callback {
 public:
  // `logs_dir` is created at the start of training if needed.
  // `resumed_logs_dir`: the logs folder of the run a resume continues.
  explicit CSVLogger(std::filesystem::path logs_dir, char separator = ',',
                     std::filesystem::path resumed_logs_dir = {});

  std::string name() const override { return "csv_logger"; }
  void on_train_begin(TrainContext& ctx) override;
  void on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) override;
  // {"file": name inside logs_dir, "columns": [...] once fixed}. The name,
  // not the path, so a moved output folder still resumes.
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;

  // The log file; empty before on_train_begin and on ranks that do not write.
  std::filesystem::path path() const;

 private:
  // Drops the rows of epochs >= `epoch` and a torn last line (a killed run's
  // leftovers), and takes the columns from the header if none were saved.
  void trim_for_resume(int epoch);

  // Copies the resumed run's log into logs_dir, when it is elsewhere.
  void carry_resumed_log();

  std::filesystem::path logs_dir_;
  char sep_;
  std::filesystem::path resumed_logs_dir_;
  std::string file_name_;
  std::vector<std::string> columns_;  // fixed at the first epoch
  bool columns_fixed_ = false;
  bool writer_ = false;
  bool resumed_ = false;
  bool first_row_pending_ = true;  // header and resume checks happen once
};

}  // namespace cifar
