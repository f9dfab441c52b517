// The evaluation stage: the test split over every rank, its figures in the
// outcome (inference_results.json's contents, the summary's "test"), and
// the line that reports them.
#pragma once
#include "distributed/context.h"
#include "evaluation/evaluate.h"
#include "reporting/run_outputs.h"
#include "run/setup.h"

namespace cifar {

// The run's time from its first training step (the time budget's timing
// included) to the end of its evaluation, as the summary records its parts.
double run_seconds(const nlohmann::json& summary);

SplitEvaluation evaluate_test_split(const Config& config, const Splits& splits, const RunModel& model,
                                    const torch::Device& device, DistributedContext& dist, RunOutcome& outcome);

}  // namespace cifar
