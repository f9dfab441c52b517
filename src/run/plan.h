// A run, planned before any data is read or any output written: the
// configuration it runs with, the checkpoint it starts from (read once),
// and the model it builds. Every check that needs no data is made here,
// so bad input costs nothing and changes nothing.
#pragma once
#include <optional>
#include <set>
#include <string>

#include "checkpoint/pretrained_weights.h"
#include "checkpoint/resume.h"
#include "config/config.h"
#include "models/net.h"

namespace cifar {

struct RunPlan {
  Config config;                    // a resume's settings under the flags given
  std::optional<StartPoint> start;  // --resume's or --load-model's checkpoint
  // --pretrained-weights as read (imagenet's fetched into the cache first).
  std::shared_ptr<const PretrainedWeights> pretrained;
  // The model the run builds: the checkpoint's, or the one the flags
  // describe (its class names are placeholders until the data's are read).
  ModelSpec spec;
  // The model the flags describe, where a checkpoint brings another one
  // (--load-model, an evaluation): named in a note, since they do not apply.
  std::optional<std::string> flags_model_not_applied;
};

// `flags` as parsed, `given` the flags set on the command line or in a
// config file. Throws UserError for any input the run cannot use.
RunPlan plan_run(const Config& flags, const std::set<std::string>& given);

// The model the flags describe, for `classes` with `norm`-alisation: the
// one place a configuration becomes a ModelSpec.
ModelSpec spec_from_flags(const Config& config, const std::vector<std::string>& classes);

}  // namespace cifar
