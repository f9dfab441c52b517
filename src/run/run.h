// A run as the original's main.py: build, train, evaluate, report, each
// stage skippable with its flag. plan.h decides what runs; setup.h,
// train_stage.h and evaluate_stage.h do it; reporting/run_outputs.h
// writes what remains.
#pragma once
#include "run/plan.h"

namespace cifar {

// Runs a planned run; returns the process exit code (0, 1 when training
// diverged, 128+signal when interrupted). Throws UserError for bad input.
int run(const RunPlan& plan);

}  // namespace cifar
