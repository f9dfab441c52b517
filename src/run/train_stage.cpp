#include "run/train_stage.h"

#include <iostream>

#include "common/atomic_file.h"
#include "common/signals.h"
#include "reporting/format.h"
#include "run/record.h"
#include "training/time_budget.h"

namespace cifar {
namespace {

// A resume into another --output-dir brings the run's best checkpoint
// along from beside the resumed file: EarlyStopping restores the best
// weights from it at the end, and the new folder then holds the whole run.
// One already there is replaced: it belongs to another run (the resumed
// run's is beside its file), and restoring it would pass off that run's
// weights as this one's.
void carry_best_checkpoint(const std::string& resume, const RunFolder& folder) {
  const auto from = RunFolder::folder_of(resume) / RunFolder::kBestCheckpoint;
  const auto to = folder.best_checkpoint();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(from, ec) || std::filesystem::equivalent(from, to, ec)) return;
  write_file_atomic(to, read_file(from));
  std::cout << "Copied the run's best checkpoint " << from.string() << " to " << to.string() << "\n";
}

std::filesystem::path resumed_run(const RunPlan& plan) {
  return plan.start && plan.start->resume ? RunFolder::run_of(plan.start->path) : std::filesystem::path();
}

}  // namespace

TrainStage::TrainStage(const RunPlan& plan, const RunFolder& folder, const Splits& splits, RunModel& model,
                       const torch::Device& device, DistributedContext& dist)
    : plan_(plan),
      folder_(folder),
      dist_(dist),
      trainer_(plan.config, splits, model.net, model.spec, device, dist),
      callbacks_(make_callbacks(plan.config, folder, resumed_run(plan))) {
  install_stop_signals();
  for (auto& cb : callbacks_.all) trainer_.add_callback(cb);
  if (plan.start && plan.start->resume) trainer_.resume(*plan.start);
  plan_epochs(splits);
}

// --time-budget: planned before the first step (and corrected as epochs
// are timed); a resumed run keeps the plan its checkpoint records.
void TrainStage::plan_epochs(const Splits& splits) {
  const Config& config = plan_.config;
  const auto budget = parse_duration(config.train.time_budget);
  if (!budget) return;
  if (callbacks_.budget->has_plan()) {  // restored by the resume
    if (dist_.is_writer()) {
      std::cout << "Time budget " << format_duration(*budget) << ": the run's plan of " << trainer_.epochs()
                << " epochs\n";
    }
    return;
  }
  // After training: calibration and the test split, TTA's views and the
  // plain pass beside them. The best checkpoint is calibrated as well only
  // where its weights differ from the final model's, which the schedules
  // that budgets suit (one-cycle, cosine) rarely leave; the margin takes it.
  const int64_t views = config.run.tta ? 4 : 1;
  int64_t final_views = 0;
  if (config.run.calibration == "temperature") final_views += views * splits.val.size();
  if (!config.run.skip_inference) final_views += (config.run.tta ? 5 : 1) * splits.test.size();
  const BudgetPlan budget_plan = plan_time_budget(trainer_, *budget, final_views);
  callbacks_.budget->set_plan(budget_plan);
  if (dist_.is_writer()) std::cout << "Time budget: " << budget_plan.describe() << "\n";
}

int TrainStage::fit(nlohmann::json& summary) {
  if (plan_.start && plan_.start->resume) {
    if (dist_.is_writer()) carry_best_checkpoint(plan_.start->path, folder_);
    dist_.barrier();
  }
  const FitResult fit = trainer_.fit();
  // From here a signal ends the process as usual: what remains (evaluation,
  // plots) writes each file atomically, and a run already written is kept.
  // A signal that came after fit()'s last agreement is agreed here, once
  // no new one can set the flag, so every rank goes on to the evaluation or
  // none does.
  restore_default_signals();
  const int late_signal = fit.signal == 0 ? trainer_.agreed_stop_signal() : 0;
  record_fit(plan_.config.train.monitor, trainer_.epochs(), fit, *callbacks_.history, summary);
  if (callbacks_.budget && callbacks_.budget->has_plan()) summary["time_budget"] = callbacks_.budget->plan().to_json();
  // A diverged run exits 1: its reason is an error, on stderr.
  if (!fit.stop_reason.empty() && dist_.is_writer()) {
    if (fit.diverged) {
      std::cerr << "error: training stopped: " << fit.stop_reason << "\n";
    } else {
      std::cout << "Training stopped: " << fit.stop_reason << "\n";
    }
  }
  if (fit.signal) return 128 + fit.signal;
  if (late_signal) {
    if (dist_.is_writer()) std::cout << "Stopped by a signal after training; the checkpoints are complete\n";
    return 128 + late_signal;
  }
  return fit.diverged ? 1 : 0;
}

}  // namespace cifar
