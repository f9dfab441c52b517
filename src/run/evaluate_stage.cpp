#include "run/evaluate_stage.h"

#include <chrono>
#include <iostream>

#include "common/runtime.h"
#include "reporting/format.h"

namespace cifar {

double run_seconds(const nlohmann::json& summary) {
  double total = 0;
  for (const char* part : {"wall_seconds", "calibration_seconds", "eval_seconds"}) {
    if (summary.contains(part) && summary[part].is_number()) total += summary[part].get<double>();
  }
  if (summary.contains("time_budget") && summary["time_budget"].contains("measure_seconds")) {
    total += summary["time_budget"]["measure_seconds"].get<double>();
  }
  return total;
}

SplitEvaluation evaluate_test_split(const Config& config, const Splits& splits, const RunModel& model,
                                    const torch::Device& device, DistributedContext& dist, RunOutcome& outcome) {
  EvalOptions options;
  options.device = device;
  options.tta = config.run.tta;
  options.autocast = use_bf16_autocast(config.train.mixed_precision, device);
  options.temperature = model.spec.temperature;
  const Normalization norm{model.spec.mean, model.spec.std};
  const auto start = std::chrono::steady_clock::now();
  SplitEvaluation evaluation = evaluate_sharded(*model.net, splits.test, norm, options, model.spec.class_names, dist);
  ResultsInfo info{spec_to_json(model.spec), model.weights.empty() ? "(weights of this run)" : model.weights,
                   "test_batch.bin (" + std::to_string(splits.test.size()) + " images)", config.run.tta};
  info.temperature = model.spec.temperature;
  if (evaluation.uncalibrated) info.ece_uncalibrated = make_report(*evaluation.uncalibrated, model.spec.class_names).ece;
  // TTA's figures beside the plain ones, so its gain is not taken on trust.
  if (config.run.tta) {
    EvalOptions plain = options;
    plain.tta = false;
    const EvalReport r = evaluate_sharded(*model.net, splits.test, norm, plain, model.spec.class_names, dist).report;
    info.without_tta = Figures{r.accuracy, r.top3_accuracy, r.loss};
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const EvalReport& r = evaluation.report;
  outcome.inference = results_json(r, info);
  outcome.summary["test"] = {{"accuracy", r.accuracy}, {"top3_accuracy", r.top3_accuracy}, {"loss", r.loss},
                             {"ece", r.ece},           {"temperature", info.temperature},
                             {"num_samples", r.num_samples}, {"tta", config.run.tta},
                             {"checkpoint", info.checkpoint}};
  if (info.without_tta) outcome.summary["test"]["accuracy_without_tta"] = info.without_tta->accuracy;
  outcome.summary["eval_seconds"] = seconds;
  if (dist.is_writer()) {
    std::cout << "Test accuracy: " << format_percent(r.accuracy) << (config.run.tta ? " with TTA" : "");
    if (info.without_tta) std::cout << " (" << format_percent(info.without_tta->accuracy) << " without)";
    std::cout << ", top-3 " << format_percent(r.top3_accuracy) << ", cross-entropy " << format_number(r.loss)
              << ", ECE " << format_number(r.ece);
    if (info.ece_uncalibrated) {
      std::cout << " (" << format_number(*info.ece_uncalibrated) << " before temperature "
                << format_number(info.temperature) << ")";
    }
    std::cout << " on " << r.num_samples << " images";
    if (!config.run.skip_training && outcome.summary.contains("wall_seconds")) {
      std::cout << "; training and evaluation took " << format_duration(run_seconds(outcome.summary));
    }
    std::cout << "\n";
  }
  return evaluation;
}

}  // namespace cifar
