// The run's record: results/config.json, written once nothing can refuse
// the run any more, and the summary (training_summary.json) the stages
// fill in.
#pragma once
#include <nlohmann/json.hpp>

#include "distributed/context.h"
#include "outputs/run_folder.h"
#include "reporting/run_outputs.h"
#include "run/plan.h"
#include "run/setup.h"
#include "training/callbacks/history.h"
#include "training/trainer.h"

namespace cifar {

// Writes config.json and returns the outcome the stages fill in. An
// evaluation of a run's own checkpoint in the run's folder keeps the run's
// configuration and training record, and updates the record's test
// figures; any other run starts both afresh, describing the model used.
RunOutcome start_record(const RunPlan& plan, const RunFolder& folder, const Splits& splits, const RunModel& model,
                        const torch::Device& device, int threads, int world_size);

// A fit's part of the summary: epochs, stop reason, times, rate, history
// and the best epoch by `monitor`; `epochs` is the run's planned length.
void record_fit(const std::string& monitor, int epochs, const FitResult& fit, const History& history,
                nlohmann::json& summary);

}  // namespace cifar
