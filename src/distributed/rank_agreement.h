// Ranks started with different flags would fail in the first collective
// whose sizes differ, with an error from inside Gloo or NCCL (or train
// different models without a word); so they first agree on every setting
// but those that may differ between machines (paths, threads, device).
#pragma once
#include <string>

#include "config/config.h"
#include "distributed/context.h"

namespace cifar {

// `start` describes what the run starts from (a checkpoint's model and a
// resume's position; "" for none), which the ranks must share too. Throws
// UserError naming the first flag where this rank differs from rank 0.
void check_ranks_agree(const Config& config, const std::string& start, DistributedContext& dist);

}  // namespace cifar
