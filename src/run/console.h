// What a run says first: the program, device and threads, then only the
// settings that differ from their defaults (--verbose: all of them; the
// whole configuration is in results/config.json either way), and what the
// model is and where its weights come from.
#pragma once
#include <torch/torch.h>

#include "distributed/context.h"
#include "run/plan.h"
#include "run/setup.h"

namespace cifar {

// The configuration a run records (results/config.json) and shows: with a
// checkpoint, its model's flags (the model used), not the flags' defaults.
Config recorded_config(const RunPlan& plan);

void print_run_header(const RunPlan& plan, const torch::Device& device, int threads, const DistributedContext& dist);

void print_model_lines(const RunPlan& plan, const RunModel& model);

}  // namespace cifar
