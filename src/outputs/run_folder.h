// A run's folder (--output-dir): every path a run writes, by one name each,
// how a checkpoint's run is found, and the lock that keeps a second run
// out while one writes there.
//
//   <root>/checkpoints/best_model.pt, latest_model.pt
//   <root>/logs/training_log_<time>.csv, logs/tensorboard/
//   <root>/results/config.json, training_summary.json, training_history.json,
//                  inference_results.json, report.html, the plots
//
// Folders are made by the first file written into them, so a run that
// stops on bad input leaves none behind.
#pragma once
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace cifar {

class RunFolder {
 public:
  explicit RunFolder(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path checkpoints() const { return root_ / "checkpoints"; }
  std::filesystem::path logs() const { return root_ / "logs"; }
  std::filesystem::path results() const { return root_ / "results"; }

  std::filesystem::path best_checkpoint() const { return checkpoints() / kBestCheckpoint; }
  std::filesystem::path latest_checkpoint() const { return checkpoints() / kLatestCheckpoint; }
  std::filesystem::path config_file() const { return results() / "config.json"; }
  std::filesystem::path summary_file() const { return results() / "training_summary.json"; }
  std::filesystem::path history_file() const { return results() / "training_history.json"; }
  std::filesystem::path inference_file() const { return results() / "inference_results.json"; }
  std::filesystem::path report_file() const { return results() / "report.html"; }

  static constexpr const char* kBestCheckpoint = "best_model.pt";
  static constexpr const char* kLatestCheckpoint = "latest_model.pt";

  // The training record in results/ (training_summary.json with a
  // history), or null when there is none or it is unreadable.
  nlohmann::json training_record() const;
  // Whether results/ holds a training run's: the record, or (the summary
  // damaged or hand-edited) the History callback's file.
  bool holds_training_run() const;

  // Checks, without making anything, that the run can write its folders
  // here: each that exists is writable, and the nearest existing folder
  // above those that do not is. A training run writes all three, an
  // evaluation results/ only.
  void check_writable(bool checkpoints_and_logs) const;

  // The run a checkpoint belongs to: the folder holding its checkpoints/
  // folder, the file's own links followed (a link to a run's checkpoint is
  // that run's) but not its folders' (a run whose checkpoints/ links to
  // scratch storage is still the run holding the link); empty when the
  // file lies elsewhere.
  static std::filesystem::path run_of(const std::string& checkpoint);
  // The folder a checkpoint file lies in, made absolute, the file's own
  // links followed as above.
  static std::filesystem::path folder_of(const std::string& checkpoint);

 private:
  std::filesystem::path root_;
};

// The run's hold on its folder: an advisory lock (flock) on
// results/.cifar10.lock, which also holds the holder's pid, kept for the
// process's life. The kernel drops it when the process ends, however it
// ends, so a lock left by a dead run never blocks. In results/ because
// every run writes there, an evaluation of a run whose other folders are
// read-only included.
class RunLock {
 public:
  // Takes the lock, making results/ if need be; throws UserError naming
  // the folder and the pid of the run holding it.
  static std::unique_ptr<RunLock> take(const RunFolder& folder);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace cifar
