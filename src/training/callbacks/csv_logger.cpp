#include "training/callbacks/csv_logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "reporting/csv.h"

namespace cifar {
namespace fs = std::filesystem;

namespace {

// Creates training_log_YYYYmmdd_HHMMSS.csv (local time: names sort by start
// and read as dates) and returns its name; "_<n>" is added only when another
// run took that name in the same second.
std::string create_fresh_file(const fs::path& dir) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &local);
  for (int n = 0;; ++n) {
    std::string name = "training_log_" + std::string(stamp) +
                       (n == 0 ? "" : "_" + std::to_string(n)) + ".csv";
    const fs::path path = dir / name;
    // O_EXCL: never append to another run's log.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      return name;
    }
    if (errno != EEXIST) {
      throw UserError("cannot create " + path.string() + ": " + std::strerror(errno),
                      kExitRuntime);
    }
  }
}

// training_log_<stamp>[_<n>].csv with no folder part: what create_fresh_file makes.
bool is_log_file_name(const std::string& name) {
  const std::string prefix = "training_log_", suffix = ".csv";
  if (name.size() <= prefix.size() + suffix.size() || name.size() > 128) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  for (char c : name.substr(prefix.size(), name.size() - prefix.size() - suffix.size())) {
    if (!((c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

bool empty_or_absent(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec || size == 0;
}

}  // namespace

CSVLogger::CSVLogger(fs::path logs_dir, char separator, fs::path resumed_logs_dir)
    : logs_dir_(std::move(logs_dir)), sep_(separator), resumed_logs_dir_(std::move(resumed_logs_dir)) {
  check_input(separator != '"' && separator != '\n' && separator != '\r',
              "CSVLogger separator must not be a quote or a line break");
}

fs::path CSVLogger::path() const {
  return file_name_.empty() || !writer_ ? fs::path() : logs_dir_ / file_name_;
}

void CSVLogger::on_train_begin(TrainContext& ctx) {
  writer_ = ctx.is_writer();
  if (!writer_) return;
  ensure_dir(logs_dir_);
  first_row_pending_ = true;
  // Keras opens the file when training begins: it exists from the start.
  if (file_name_.empty()) file_name_ = create_fresh_file(logs_dir_);
  if (resumed_) carry_resumed_log();
}

void CSVLogger::carry_resumed_log() {
  if (resumed_logs_dir_.empty()) return;
  const fs::path from = resumed_logs_dir_ / file_name_, to = logs_dir_ / file_name_;
  std::error_code ec;
  if (fs::exists(to, ec) || !fs::is_regular_file(from, ec) || fs::equivalent(from, to, ec)) return;
  write_file_atomic(to, read_file(from));
  std::cout << "Copied the run's CSV log " << from.string() << " to " << to.string() << "\n";
}

void CSVLogger::trim_for_resume(int epoch) {
  const fs::path file = path();
  if (empty_or_absent(file)) return;
  const std::string text = read_file(file);
  const auto records = parse_csv(text, sep_);
  std::string kept;
  bool changed = false;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const std::string_view raw(text.data() + r.begin, r.end - r.begin);
    if (i == 0) {
      // A header cut short names a column wrongly: drop it, and the file,
      // left empty, gets a whole one.
      if (!r.terminated) {
        changed = true;
        break;
      }
      if (!columns_fixed_ && !r.fields.empty() && r.fields[0] == "epoch") {
        columns_.assign(r.fields.begin() + 1, r.fields.end());
        columns_fixed_ = true;
      }
      kept += raw;
      continue;
    }
    // Row epochs are integers we wrote; a torn or unreadable row is dropped.
    char* end = nullptr;
    const long row_epoch = r.fields.empty() ? -1 : std::strtol(r.fields[0].c_str(), &end, 10);
    const bool readable = r.terminated && end && *end == '\0' && !r.fields[0].empty();
    if (readable && row_epoch < epoch) {
      kept += raw;
    } else {
      changed = true;
    }
  }
  if (changed) write_file_atomic(file, kept);
}

void CSVLogger::on_epoch_end(int epoch, Logs& logs, TrainContext&) {
  if (!writer_) return;
  std::string text;
  if (first_row_pending_) {
    first_row_pending_ = false;
    if (resumed_) trim_for_resume(epoch);
    if (!columns_fixed_) {
      columns_.clear();
      // std::map iterates in byte order: Python's sorted() for UTF-8 names.
      for (const auto& kv : logs) {
        if (kv.first != "epoch") columns_.push_back(kv.first);
      }
      // Keras 3: with no val_ key at the first epoch (no validation, or
      // validation_freq > 1) every key also gets a val_<key> column, after
      // the sorted ones and unsorted (val_learning_rate too), filled with NA
      // until validation comes.
      const bool has_val = std::any_of(columns_.begin(), columns_.end(),
                                       [](const std::string& k) { return k.rfind("val_", 0) == 0; });
      if (!has_val) {
        const size_t n = columns_.size();
        for (size_t i = 0; i < n; ++i) columns_.push_back("val_" + columns_[i]);
      }
      columns_fixed_ = true;
    }
    if (empty_or_absent(path())) {
      std::vector<std::string> header{"epoch"};
      header.insert(header.end(), columns_.begin(), columns_.end());
      text += csv_line(header, sep_);
    }
  }
  std::vector<std::string> row{std::to_string(epoch)};
  for (const auto& column : columns_) {
    auto it = logs.find(column);
    row.push_back(it == logs.end() ? "NA" : csv_number(it->second));
  }
  text += csv_line(row, sep_);
  append_to_file(path(), text);
}

nlohmann::json CSVLogger::state() const {
  nlohmann::json j = nlohmann::json::object();
  if (!file_name_.empty()) j["file"] = file_name_;
  if (columns_fixed_) j["columns"] = columns_;
  return j;
}

void CSVLogger::load_state(const nlohmann::json& state) {
  try {
    file_name_ = state.value("file", std::string());
    // The name is joined to logs/ and the file is then trimmed and appended
    // to: a checkpoint naming "/home/me/.bashrc" or "../../x" must not make
    // a resumed run rewrite that file. Only names this logger makes pass.
    if (!file_name_.empty() && !is_log_file_name(file_name_)) {
      throw UserError("the checkpoint's csv_logger state names the log file '" + printable(file_name_, 80) +
                      "', which is not a training_log_*.csv name in the logs folder (hint: resume from a "
                      "checkpoint this version wrote)");
    }
    columns_fixed_ = state.contains("columns");
    columns_ = columns_fixed_ ? state.at("columns").get<std::vector<std::string>>()
                              : std::vector<std::string>{};
  } catch (const nlohmann::json::exception& e) {
    throw UserError(std::string("the checkpoint's csv_logger state is malformed: ") + e.what() +
                    " (hint: resume from a checkpoint this version wrote)");
  }
  resumed_ = true;
}

}  // namespace cifar
