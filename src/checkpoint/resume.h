// What a run starts from when --resume or --load-model names a checkpoint:
// the file is read once, every check of it against the run is made here,
// before any data is read or any output written, and the result is handed
// to whoever needs it (the settings to the run, the model to the builder,
// the state to the trainer).
#pragma once
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "checkpoint/checkpoint.h"
#include "config/config.h"

namespace cifar {

struct StartPoint {
  std::string path;  // as given
  std::string flag;  // "--resume" or "--load-model"
  std::shared_ptr<const CheckpointData> checkpoint;
  ModelSpec spec;    // the model it holds, which the run builds
  // Where training continues: set for a --resume that trains.
  std::optional<ResumePoint> resume;
  // For the ranks to compare: the model, and a resume's position.
  std::string description;
};

// Reads --resume's (else --load-model's) checkpoint once and checks its
// format; nullopt when neither flag is given.
std::optional<StartPoint> read_start_point(const Config& flags);

// The settings a --resume run continues with: the checkpoint's, except
// those given (`given`: the flags set on the command line or in --config)
// and those of this machine and invocation (paths, threads, device,
// launcher, skip flags). Without --output-dir, training continues in the
// run's own folder. Refuses, naming the flag, what would not continue the
// same run: another preset, seed, split, batch size, monitor or optimizer.
// Returns the validated result.
Config resumed_settings(const Config& flags, const std::set<std::string>& given, const StartPoint& start);

// A resume continues the run the flags describe (`wanted`): the checkpoint
// must hold that model and dropout, or the user would silently train
// another architecture than the one asked for (the model itself is rebuilt
// from the checkpoint).
void check_resume_model(const ModelSpec& wanted, const StartPoint& start);

// "a resnet depth 18", "an efficientnet input size 32".
std::string a_model(const ModelSpec& spec);

}  // namespace cifar
