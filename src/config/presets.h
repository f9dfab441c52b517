// The --preset recipes: named sets of defaults (model, schedule,
// augmentation) that a config file's values and the flags then override.
#pragma once
#include <string>

#include "config/config.h"

namespace cifar {

// Applies a named preset ("quick", "full") to the config's defaults.
void apply_preset(Config& config, const std::string& preset);

}  // namespace cifar
