// The original system's main.py flow as one function: configuration ->
// data -> model -> training (callbacks) -> evaluation -> visualisation ->
// results, each stage skippable as with the original's flags.
#pragma once
#include <filesystem>

#include "config/config.h"

namespace cifar {

struct RunPaths {
  std::filesystem::path root, checkpoints, logs, results;
  explicit RunPaths(const std::filesystem::path& output_dir)
      : root(output_dir), checkpoints(output_dir / "checkpoints"), logs(output_dir / "logs"), results(output_dir / "results") {}
};

// Runs the pipeline; returns the process exit code (0, 1 when training
// diverged, 128+signal when interrupted). Throws UserError for bad input.
int run_pipeline(const Config& config);

}  // namespace cifar
