// The original system's main.py flow as one function: configuration ->
// data -> model -> training (callbacks) -> evaluation -> visualisation ->
// results, each stage skippable as with the original's flags.
#pragma once
#include <filesystem>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "models/net.h"
#include "training/callback.h"

namespace cifar {

struct RunPaths {
  std::filesystem::path root, checkpoints, logs, results;
  explicit RunPaths(const std::filesystem::path& output_dir)
      : root(output_dir), checkpoints(output_dir / "checkpoints"), logs(output_dir / "logs"), results(output_dir / "results") {}
};

class History;

// The callbacks of a training run, in the order they must run: schedules and
// stopping first, then the sinks, checkpoints last so they capture every
// other callback's state. `history` receives the History callback.
std::vector<std::shared_ptr<Callback>> make_callbacks(const Config& config, const RunPaths& paths,
                                                      std::shared_ptr<History>& history);

// A resume continues the run its checkpoint holds: every setting not in
// `given` (the flags set on the command line or in --config) is the run's
// own, read from the checkpoint, except those of this machine and this
// invocation (paths, threads, device, launcher, skip flags). Without
// --output-dir, the run's folder (the one holding checkpoints/) is used.
// Returns the validated result; `config` itself when it resumes nothing.
Config resumed_run_config(const Config& config, const std::set<std::string>& given);

// The files a run starts from (--load-model, --resume, --pretrained-weights,
// ImageNet's fetched into the cache if need be) are readable and of their format, a resume's checkpoint holds the model
// the flags describe, and --load-model is not a file training would
// overwrite: checked before data is read, before any output is replaced,
// and by the local launcher once before it starts its workers (one error,
// not N). Returns what the run starts from.
struct CheckpointData;
struct PretrainedWeights;
struct RunInputs {
  std::string start;               // for the ranks to compare (check_ranks_agree): the
                                   // checkpoint's model and a resume's position; "" without
  std::optional<ModelSpec> saved;  // the checkpoint's model, which the run uses
  // That checkpoint as read and checked here: the run builds from these
  // bytes, not from a second reading of a file that may have changed.
  std::shared_ptr<const CheckpointData> checkpoint;
  // --pretrained-weights as read (and for imagenet, fetched) here, before the data.
  std::shared_ptr<const PretrainedWeights> pretrained;
};
RunInputs check_run_inputs(const Config& config);

// Runs the pipeline; returns the process exit code (0, 1 when training
// diverged, 128+signal when interrupted). Throws UserError for bad input.
int run_pipeline(const Config& config);

}  // namespace cifar
