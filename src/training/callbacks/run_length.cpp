#include "training/callbacks/run_length.h"

#include <cmath>

#include "reporting/format.h"

namespace cifar {
namespace {
// Steps timed before the estimate, after the first (slow: kernels' first use).
constexpr int64_t kTimedSteps = 8;
}  // namespace

void RunLengthWarning::on_epoch_begin(int epoch, TrainContext&) {
  epoch_ = epoch;
  first_step_ = -1;
}

void RunLengthWarning::on_batch_end(int64_t step, const Logs&, TrainContext& ctx) {
  if (done_ || !ctx.is_writer()) return;
  if (first_step_ < 0) {
    first_step_ = step;
    since_ = std::chrono::steady_clock::now();
    return;
  }
  const int64_t timed = step - first_step_;
  if (timed < kTimedSteps && step + 1 < ctx.steps_per_epoch()) return;
  done_ = true;
  const double per_step =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count() / static_cast<double>(timed);
  const int64_t left = (ctx.epochs() - epoch_) * ctx.steps_per_epoch() - (step + 1);
  const double seconds = per_step * static_cast<double>(std::max<int64_t>(left, 0));
  if (seconds < kLongRunSeconds) return;
  const auto rate = static_cast<int64_t>(std::lround(static_cast<double>(ctx.batch_size()) / per_step));
  out_ << "note: at " << rate << " img/s the " << ctx.epochs() << " epochs take about " << format_duration(seconds)
       << " more (--preset quick, a GPU, or --time-budget 1h finish sooner)\n"
       << std::flush;
}

}  // namespace cifar
