#include "distributed/gradient_buckets.h"

#include <algorithm>

namespace cifar {

std::vector<FlatGroup> flatten_by_type(const std::vector<torch::Tensor>& tensors) {
  std::vector<FlatGroup> groups;
  for (const auto& t : tensors) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const FlatGroup& g) {
      return g.parts.front().scalar_type() == t.scalar_type() && g.parts.front().device() == t.device();
    });
    if (it == groups.end()) it = groups.insert(groups.end(), FlatGroup{});
    it->parts.push_back(t);
  }
  for (auto& g : groups) {
    std::vector<torch::Tensor> views;
    for (const auto& p : g.parts) views.push_back(p.detach().reshape(-1));
    g.flat = torch::cat(views);
  }
  return groups;
}

void unflatten(const FlatGroup& g) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& p : g.parts) {
    const int64_t n = p.numel();
    p.detach().copy_(g.flat.narrow(0, offset, n).view(p.sizes()));
    offset += n;
  }
}


void GradientBuckets::build() {
  buckets.clear();
  layout.assign(params.size(), false);
  bucket_of.assign(params.size(), -1);
  slots.assign(params.size(), torch::Tensor());
  passes_seen.assign(params.size(), 0);
  std::vector<std::vector<size_t>> groups;
  size_t bytes = 0;
  for (size_t k = params.size(); k-- > 0;) {
    const auto& p = params[k];
    layout[k] = p.requires_grad();
    if (!p.requires_grad()) continue;
    const size_t size = static_cast<size_t>(p.numel()) * p.element_size();
    const bool same_kind = !groups.empty() && params[groups.back().front()].scalar_type() == p.scalar_type() &&
                           params[groups.back().front()].device() == p.device();
    if (groups.empty() || !same_kind || bytes + size > cap_bytes) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += size;
  }
  for (const auto& g : groups) {
    Bucket b;
    int64_t numel = 0;
    for (size_t k : g) numel += params[k].numel();
    b.flat = torch::zeros({numel}, params[g.front()].options().requires_grad(false));
    int64_t offset = 0;
    for (size_t k : g) {
      const auto& p = params[k];
      bucket_of[k] = static_cast<int>(buckets.size());
      // The parameter's own strides: the averaged gradient is handed to
      // the optimiser as this view, and AccumulateGrad and the foreach
      // optimisers want a gradient laid out as its parameter.
      auto part = b.flat.narrow(0, offset, p.numel());
      slots[k] = p.is_non_overlapping_and_dense() ? part.as_strided(p.sizes(), p.strides(), part.storage_offset())
                                                  : part.view(p.sizes());
      offset += p.numel();
    }
    b.params = g;
    buckets.push_back(std::move(b));
  }
}

bool GradientBuckets::layout_changed() const {
  for (size_t k = 0; k < params.size(); ++k) {
    if (params[k].requires_grad() != layout[k]) return true;
  }
  return false;
}

void GradientBuckets::launch_ready() {
  while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].params.size()) {
    buckets[next_launch].work = launch(buckets[next_launch].flat);
    ++next_launch;
  }
}

void GradientBuckets::on_gradient(size_t k, const torch::Tensor& grad) {
  if (!active || bucket_of[k] < 0 || passes_seen[k] >= passes) return;
  torch::NoGradGuard no_grad;
  auto& s = slots[k];
  if (passes_seen[k] == 0) s.copy_(grad);
  else s.add_(grad);
  if (++passes_seen[k] == passes && ++buckets[bucket_of[k]].ready == buckets[bucket_of[k]].params.size()) {
    launch_ready();
  }
}

}  // namespace cifar
