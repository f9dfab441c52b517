#include "training/metrics.h"

namespace cifar {

void MetricSums::add(const torch::Tensor& logits, const torch::Tensor& labels, double mean_loss) {
  torch::NoGradGuard no_grad;
  const int64_t b = labels.size(0);
  const int64_t k = std::min<int64_t>(3, logits.size(1));
  auto top = std::get<1>(logits.topk(k, 1));
  auto hits = top.eq(labels.view({-1, 1}));
  correct += hits.select(1, 0).sum().item<double>();
  top3 += hits.any(1).sum().item<double>();
  loss_sum += mean_loss * static_cast<double>(b);
  count += static_cast<double>(b);
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

}  // namespace cifar
