// Which samples each step sees. Every rank draws the same seed+epoch
// permutation; a global batch is a contiguous slice of it, and rank r takes
// its part of that slice, so world size 1 and N see the same global batches
// and every image exactly once per epoch across ranks.
#pragma once
#include <torch/torch.h>

namespace cifar {

// Permutation of [0, n) for this epoch, the same on every rank.
torch::Tensor epoch_order(int64_t n, uint64_t seed, int64_t epoch);

// Global batches in an epoch: the last one may be short (Keras keeps it).
int64_t steps_per_epoch(int64_t n, int64_t global_batch);

// Images in global batch `step` (the last one may be short).
int64_t global_batch_length(int64_t n, int64_t step, int64_t global_batch);

// Rank r's indices for global batch `step`: the global batch split in
// `world` near-equal contiguous parts (the first `len % world` parts one
// longer), so a short last batch is shared without padding or duplicates.
torch::Tensor rank_batch(const torch::Tensor& order, int64_t step, int64_t global_batch, int rank, int world);

// Rank r's contiguous shard of [0, n) for evaluation: same split rule, no padding.
std::pair<int64_t, int64_t> rank_range(int64_t n, int rank, int world);

}  // namespace cifar
