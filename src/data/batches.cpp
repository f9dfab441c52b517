#include "data/batches.h"

#include "data/augment.h"

namespace cifar {

torch::Tensor epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  auto gen = at::detail::createCPUGenerator(step_seed(seed, epoch, -1, /*stream=*/1));
  return torch::randperm(n, gen, torch::kInt64);
}

int64_t steps_per_epoch(int64_t n, int64_t global_batch) { return (n + global_batch - 1) / global_batch; }

std::pair<int64_t, int64_t> rank_range(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

int64_t global_batch_length(int64_t n, int64_t step, int64_t global_batch) {
  return std::min(global_batch, n - step * global_batch);
}

torch::Tensor rank_batch(const torch::Tensor& order, int64_t step, int64_t global_batch, int rank, int world) {
  const int64_t begin = step * global_batch;
  auto [b, e] = rank_range(global_batch_length(order.size(0), step, global_batch), rank, world);
  return order.slice(0, begin + b, begin + e);
}

}  // namespace cifar
