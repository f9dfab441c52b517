// Metrics as sums and counts, so merging shards (steps, ranks) is addition
// and a distributed reduction is one all-reduce of a small vector.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace cifar {

// Keras-style logs: metric name -> value ("loss", "val_accuracy", "lr", ...).
using Logs = std::map<std::string, double>;

struct MetricSums {
  double loss_sum = 0;  // sum over samples of the per-sample loss
  double correct = 0;   // top-1 hits
  double top3 = 0;      // top-3 hits
  double count = 0;     // samples

  // Adds a batch: logits [B,C], labels [B], mean loss over the batch.
  void add(const torch::Tensor& logits, const torch::Tensor& labels, double mean_loss);
  void merge(const MetricSums& other);
  // {"<prefix>loss", "<prefix>accuracy", "<prefix>top3_accuracy"}
  Logs to_logs(const std::string& prefix = "") const;
  torch::Tensor to_tensor() const;  // float64 [4], for all-reduce
  static MetricSums from_tensor(const torch::Tensor& t);
};

// The same sums kept on the device that computed the logits. Adding a batch
// only queues a few tiny kernels; nothing waits for the device until read(),
// so a GPU training step need not stall on a host read of its loss (three
// such reads a step stalled a GPU's trainer when the sums lived on the host).
class DeviceMetricSums {
 public:
  // Zero sums on `device`.
  void reset(const torch::Device& device);
  // `mean_loss`: the batch's mean loss, a 0-dim tensor on the device.
  void add(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mean_loss);
  void assign(const MetricSums& sums);
  // Waits for the device.
  MetricSums read() const;

 private:
  torch::Tensor sums_;  // float64 [4]: MetricSums' fields, in order
};

}  // namespace cifar
