// Training as a run does it: the Trainer with the run's callbacks, a
// resume's state loaded, all set up before the run writes anything; then
// the fit, recorded in the summary.
#pragma once
#include <nlohmann/json.hpp>

#include "distributed/context.h"
#include "outputs/run_folder.h"
#include "run/plan.h"
#include "run/setup.h"
#include "training/callbacks/factory.h"
#include "training/trainer.h"

namespace cifar {

class TrainStage {
 public:
  // Builds the trainer and loads a resume's state: what can still refuse
  // the run does so here, before its folder is touched.
  TrainStage(const RunPlan& plan, const RunFolder& folder, const Splits& splits, RunModel& model,
             const torch::Device& device, DistributedContext& dist);

  // Fits and records the run in `summary`. Returns the exit code: 0, 1
  // when the loss diverged, 128+signal when a signal stopped it.
  int fit(nlohmann::json& summary);

 private:
  void plan_epochs(const Splits& splits);

  const RunPlan& plan_;
  RunFolder folder_;
  DistributedContext& dist_;
  Trainer trainer_;
  RunCallbacks callbacks_;
};

}  // namespace cifar
