// The callbacks of a real training run, built from its configuration.
#pragma once
#include <memory>
#include <vector>

#include "config/config.h"
#include "outputs/run_folder.h"
#include "training/callback.h"

namespace cifar {

class History;
class TimeBudget;

struct RunCallbacks {
  // In the order they run: the progress line, schedules and stopping,
  // then the sinks, checkpoints last so they capture every other
  // callback's state.
  std::vector<std::shared_ptr<Callback>> all;
  std::shared_ptr<History> history;  // also in `all`: the run's record
  std::shared_ptr<TimeBudget> budget;  // also in `all` with --time-budget, else null
};

// `folder` receives the run's files; a resume into another folder carries
// the run's logs along from `resumed_run` (the folder holding the resumed
// checkpoint's checkpoints/; empty for none).
RunCallbacks make_callbacks(const Config& config, const RunFolder& folder, const std::filesystem::path& resumed_run);

}  // namespace cifar
