// --calibration temperature: after training, one temperature fitted on the
// validation split for the model the run evaluates (as it evaluates, TTA
// included), recorded in the checkpoints, and applied to every confidence
// the run and `predict` report.
#pragma once
#include "distributed/context.h"
#include "outputs/run_folder.h"
#include "run/setup.h"

namespace cifar {

// Sets model.spec.temperature (and returns it), and rewrites each of the
// run's checkpoints with the temperature fitted for its own weights (the
// best and the last epoch's may differ). Rank 0 fits; every rank takes its
// figure. Without validation images, or with --calibration none, 1.
double calibrate_temperature(const Config& config, const Splits& splits, RunModel& model,
                             const torch::Device& device, DistributedContext& dist, const RunFolder& folder);

}  // namespace cifar
