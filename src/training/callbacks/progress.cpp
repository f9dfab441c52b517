#include "training/callbacks/progress.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "reporting/format.h"

namespace cifar {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string metric_text(const std::string& key, double value) { return " - " + key + ": " + format_metric(key, value); }

std::string metrics_text(const Logs& logs) {
  std::string text;
  for (const auto& [k, v] : logs) {
    if (k.rfind("batch_", 0) != 0) text += metric_text(k, v);
  }
  return text;
}

}  // namespace

void ProgressBar::on_epoch_begin(int epoch, TrainContext& ctx) {
  if (!ctx.is_writer()) return;
  epoch_start_ = last_draw_ = std::chrono::steady_clock::now();
  images_ = 0;
  if (interactive_) out_ << "Epoch " << epoch + 1 << "/" << ctx.epochs() << "\n" << std::flush;
}

// Redraw at most ~10 times a second: a terminal write per step costs, and
// so does reading the running loss from a GPU.
bool ProgressBar::wants_batch_logs(int64_t step, const TrainContext& ctx) const {
  return interactive_ && ctx.is_writer() && (step + 1 >= ctx.steps_per_epoch() || seconds_since(last_draw_) >= 0.1);
}

void ProgressBar::on_batch_end(int64_t step, const Logs& running, TrainContext& ctx) {
  if (!ctx.is_writer()) return;
  images_ += ctx.batch_size();
  if (!interactive_ || !wants_batch_logs(step, ctx)) return;
  const int64_t total = ctx.steps_per_epoch();
  last_draw_ = std::chrono::steady_clock::now();
  const double elapsed = seconds_since(epoch_start_);
  const double eta = elapsed / static_cast<double>(step + 1) * static_cast<double>(total - step - 1);
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * (step + 1) / std::max<int64_t>(total, 1));
  std::ostringstream line;
  line << "\r" << std::setw(static_cast<int>(std::to_string(total).size())) << step + 1 << "/" << total << " ["
       << std::string(filled, '=') << (filled < kWidth ? ">" : "") << std::string(std::max(0, kWidth - filled - 1), '.')
       << "] - ETA: " << format_duration(eta);
  for (const char* k : {"loss", "accuracy"}) {
    if (auto it = running.find(k); it != running.end()) line << metric_text(k, it->second);
  }
  line << " - " << static_cast<int64_t>(static_cast<double>(images_) / std::max(elapsed, 1e-9)) << " img/s\033[K";
  out_ << line.str() << std::flush;
}

void ProgressBar::on_epoch_end(int epoch, Logs& logs, TrainContext& ctx) {
  if (!ctx.is_writer()) return;
  const double elapsed = seconds_since(epoch_start_);
  const auto rate = static_cast<int64_t>(static_cast<double>(images_) / std::max(elapsed, 1e-9));
  if (interactive_) {
    out_ << "\r" << ctx.steps_per_epoch() << "/" << ctx.steps_per_epoch() << " - " << format_duration(elapsed) << " - "
         << rate << " img/s" << metrics_text(logs) << "\033[K\n" << std::flush;
  } else {
    out_ << "Epoch " << epoch + 1 << "/" << ctx.epochs() << " - " << format_duration(elapsed) << " - " << rate
         << " img/s" << metrics_text(logs) << "\n" << std::flush;
  }
}

}  // namespace cifar
