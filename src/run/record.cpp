#include "run/record.h"

#include "common/atomic_file.h"
#include "common/json_text.h"
#include "common/torch_compat.h"
#include "config/cli.h"
#include "run/console.h"
#include "training/callbacks/monitor.h"

namespace cifar {

RunOutcome start_record(const RunPlan& plan, const RunFolder& folder, const Splits& splits, const RunModel& model,
                        const torch::Device& device, int threads, int world_size) {
  RunOutcome outcome;
  const nlohmann::json run_record = plan.config.run.skip_training ? folder.training_record() : nullptr;
  const bool in_run = plan.config.run.skip_training && folder.holds_training_run();
  outcome.config = config_to_json(recorded_config(plan));
  if (!in_run) {
    write_file_atomic(folder.config_file(), json_text(outcome.config, 2) + "\n");
  } else {
    try {
      outcome.config = nlohmann::json::parse(read_file(folder.config_file()));
    } catch (const std::exception&) {
      // No readable configuration of the run: the report shows this one's.
    }
  }
  outcome.summary = !run_record.is_null() ? run_record
                                          : nlohmann::json{{"model", spec_to_json(model.spec)},
                                                           {"parameters", count_parameters(*model.net)},
                                                           {"data",
                                                            {{"train_images", splits.train.size()},
                                                             {"validation_images", splits.val.size()},
                                                             {"test_images", splits.test.size()}}},
                                                           {"device", device.str()},
                                                           {"world_size", world_size},
                                                           {"threads", threads},
                                                           {"version", CIFAR10_VERSION},
                                                           {"torch_version", compat::torch_version()}};
  return outcome;
}

void record_fit(const std::string& monitor_name, int epochs, const FitResult& fit, const History& history,
                nlohmann::json& summary) {
  summary["epochs_run"] = history.epochs().size();
  // Said outright rather than left empty, so a reader of the JSON need not
  // know that "" means the run ended normally.
  const std::string last = std::to_string(epochs);
  summary["stop_reason"] = fit.stop_reason.empty() ? "completed: epoch " + last + " of " + last : fit.stop_reason;
  summary["wall_seconds"] = fit.totals.wall_seconds;
  summary["train_seconds"] = fit.totals.train_seconds;
  summary["images_trained"] = fit.totals.images_trained;
  summary["images_per_second"] =
      fit.totals.train_seconds > 0 ? static_cast<double>(fit.totals.images_trained) / fit.totals.train_seconds : 0.0;
  summary["history"] = history.to_json();
  // The best epoch by the monitored metric, as ModelCheckpoint chose it.
  const Monitor monitor{monitor_name};
  std::optional<double> best;
  const auto& logs = history.epochs();
  for (size_t e = 0; e < logs.size(); ++e) {
    auto v = monitor.value(logs[e]);
    if (v && monitor.improves(*v, best)) {
      best = *v;
      summary["best_epoch"] = e + 1;
      summary["best_metrics"] = logs[e];
    }
  }
}

}  // namespace cifar
