#include "run/run.h"

#include <chrono>
#include <iostream>

#include "common/runtime.h"
#include "distributed/environment.h"
#include "distributed/process_group.h"
#include "distributed/rank_agreement.h"
#include "outputs/run_folder.h"
#include "run/calibrate_stage.h"
#include "run/console.h"
#include "run/evaluate_stage.h"
#include "run/record.h"
#include "run/setup.h"
#include "run/train_stage.h"

namespace cifar {

int run(const RunPlan& plan) {
  const Config& config = plan.config;
  const RunFolder folder(config.run.output_dir);
  const DistEnvironment env = detect_environment(process_environment());
  // Ranks on one machine share its cores; each uses the GPU of its local rank.
  const int threads = configure_threads(config.run.threads, env.local_world_size);
  const torch::Device device = resolve_device(config.run.device, env.local_rank);
  configure_determinism(config.run.deterministic);
  if (config.model.summary) {
    print_model_summary(plan, env);
    return 0;
  }
  auto dist = make_distributed_context(config.dist, env, device);
  check_ranks_agree(config, plan.start ? plan.start->description : "", *dist);
  if (dist->is_writer()) {
    print_run_header(plan, device, threads, *dist);
    folder.check_writable(!config.run.skip_training);
  }

  const Splits splits = load_data(config, *dist);
  RunModel model = build_run_model(plan, splits, device, *dist);
  check_batch_shares(config, splits, *model.net, dist->world_size());
  if (dist->is_writer()) print_model_lines(plan, model);
  // Set up (a resume's state loaded) before anything is written: what can
  // still refuse the run leaves its folder as it was.
  std::unique_ptr<TrainStage> training;
  if (!config.run.skip_training) training = std::make_unique<TrainStage>(plan, folder, splits, model, device, *dist);

  std::unique_ptr<RunLock> lock;
  RunOutcome outcome;
  if (dist->is_writer()) {
    lock = RunLock::take(folder);
    outcome = start_record(plan, folder, splits, model, device, threads, dist->world_size());
  }
  const int exit_code = training ? training->fit(outcome.summary) : 0;
  if (training && exit_code == 0) {
    const auto start = std::chrono::steady_clock::now();
    calibrate_temperature(config, splits, model, device, *dist, folder);
    outcome.summary["calibration_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::optional<SplitEvaluation> evaluation;
  if (!config.run.skip_inference && exit_code == 0) {
    evaluation = evaluate_test_split(config, splits, model, device, *dist, outcome);
    outcome.evaluation = &*evaluation;
    outcome.test_images = splits.test.images;
    outcome.test_labels = splits.test.labels;
  }
  if (dist->is_writer()) {
    for (auto& sink : make_output_sinks(folder, !config.run.skip_visualization)) sink->write(outcome);
    std::cout << "Results in " << folder.results().string()
              << (config.run.skip_visualization ? "" : " (open report.html)") << "\n";
  }
  return exit_code;
}

}  // namespace cifar
