#include "metrics/metric_sums.h"

namespace cifar {
namespace {

// float64 [4] on the logits' device: loss sum, top-1 hits, top-3 hits, count.
torch::Tensor batch_sums(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mean_loss) {
  torch::NoGradGuard no_grad;
  const int64_t b = labels.size(0);
  const int64_t k = std::min<int64_t>(3, logits.size(1));
  auto top = std::get<1>(logits.topk(k, 1));
  auto hits = top.eq(labels.to(top.device()).view({-1, 1}));
  const auto f64 = torch::kFloat64;
  return torch::stack({mean_loss.detach().to(top.device(), f64) * static_cast<double>(b),
                       hits.select(1, 0).sum().to(f64), hits.any(1).sum().to(f64),
                       torch::full({}, static_cast<double>(b), top.options().dtype(f64))});
}

}  // namespace

void MetricSums::add(const torch::Tensor& logits, const torch::Tensor& labels, double mean_loss) {
  merge(from_tensor(batch_sums(logits, labels, torch::tensor(mean_loss, torch::kFloat64))));
}

void MetricSums::merge(const MetricSums& o) {
  loss_sum += o.loss_sum;
  correct += o.correct;
  top3 += o.top3;
  count += o.count;
}

Logs MetricSums::to_logs(const std::string& prefix) const {
  const double n = count > 0 ? count : 1;
  return {{prefix + "loss", loss_sum / n},
          {prefix + "accuracy", correct / n},
          {prefix + "top3_accuracy", top3 / n}};
}

torch::Tensor MetricSums::to_tensor() const {
  return torch::tensor(std::vector<double>{loss_sum, correct, top3, count}, torch::kFloat64);
}

MetricSums MetricSums::from_tensor(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return {p[0], p[1], p[2], p[3]};
}

void DeviceMetricSums::reset(const torch::Device& device) {
  sums_ = torch::zeros({4}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void DeviceMetricSums::add(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mean_loss) {
  if (!sums_.defined()) reset(logits.device());
  sums_.add_(batch_sums(logits, labels, mean_loss));
}

void DeviceMetricSums::assign(const MetricSums& sums) {
  const auto device = sums_.defined() ? sums_.device() : torch::Device(torch::kCPU);
  sums_ = sums.to_tensor().to(device);
}

MetricSums DeviceMetricSums::read() const { return sums_.defined() ? MetricSums::from_tensor(sums_) : MetricSums{}; }

}  // namespace cifar
