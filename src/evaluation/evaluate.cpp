#include "evaluation/evaluate.h"

#include "common/error.h"
#include "common/runtime.h"
#include "common/torch_compat.h"
#include "data/augment.h"
#include "data/batches.h"

namespace cifar {
namespace {

// Variants averaged under TTA: identity, flip, and the flipped image moved
// one pixel each way (airbench's choice: cheap, and worth ~0.5 points).
std::vector<torch::Tensor> tta_views(const torch::Tensor& x) {
  auto flipped = x.flip({3});
  std::vector<torch::Tensor> views{x, flipped};
  const int64_t b = x.size(0);
  auto zeros = torch::zeros({b}, torch::kInt64);
  auto ones = torch::ones({b}, torch::kInt64);
  views.push_back(shift_images(flipped, zeros, ones, 1));
  views.push_back(shift_images(flipped, zeros, -ones, 1));
  return views;
}

}  // namespace

torch::Tensor predict_logits(Net& model, const torch::Tensor& images_u8, const Normalization& norm,
                             const EvalOptions& options) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = images_u8.size(0);
  const torch::ScalarType dtype = weight_dtype(model);
  std::vector<torch::Tensor> outputs;
  for (int64_t begin = 0; begin < n; begin += options.batch_size) {
    const int64_t end = std::min(n, begin + options.batch_size);
    auto x = normalize_images(to_device_async(images_u8.slice(0, begin, end), options.device), norm, dtype)
                 .contiguous(at::MemoryFormat::ChannelsLast);
    compat::AutocastGuard autocast(options.autocast, options.device.type());
    torch::Tensor logits;
    if (options.tta) {
      torch::Tensor probs;
      for (const auto& v : tta_views(x)) {
        auto p = torch::softmax(at_least_float32(model.forward(v.contiguous(at::MemoryFormat::ChannelsLast))), 1);
        probs = probs.defined() ? probs + p : p;
      }
      logits = torch::log(probs / 4.0);
    } else {
      logits = at_least_float32(model.forward(x));
    }
    outputs.push_back(logits);
  }
  if (was_training) model.train();
  // One copy back at the end: a copy per batch would wait for each batch.
  return outputs.empty() ? torch::empty({0, 0}) : torch::cat(outputs).to(torch::kCPU);
}

void check_finite_logits(const torch::Tensor& logits) {
  // -inf alone is fine: under TTA a probability that rounds to 0 logs to
  // it. NaN, +inf, or a row of nothing but -inf is not.
  const auto bad_rows = torch::isnan(logits).any(1) | torch::isposinf(logits).any(1) | torch::isneginf(logits).all(1);
  if (const int64_t bad = bad_rows.sum().item<int64_t>(); bad > 0) {
    throw UserError("the model gave NaN or infinite outputs for " + std::to_string(bad) + " of " +
                    std::to_string(logits.size(0)) +
                    " images (hint: its weights hold NaN or infinite values; load another checkpoint)");
  }
}

SplitEvaluation evaluate_split(Net& model, const ImageSet& set, const Normalization& norm,
                               const EvalOptions& options,
                               const std::vector<std::string>& class_names) {
  const auto c = static_cast<int64_t>(class_names.size());
  SplitEvaluation out{EvalCounts(c), {}, {}, {}};
  if (set.size() > 0) {
    // [N, C] floats: 400 KB for the 10,000 test images, so one pass is fine.
    auto logits = predict_logits(model, set.images, norm, options);
    check_finite_logits(logits);
    auto labels = set.labels.to(torch::kCPU);
    if (options.temperature != 1.0) {
      out.uncalibrated = EvalCounts(c);
      out.uncalibrated->add(logits, labels);
      logits = logits / options.temperature;
    }
    out.counts.add(logits, labels);
    auto top = top_k_predictions(logits, 1);
    auto predicted = top.indices.select(1, 0).contiguous();
    auto confidence = top.probs.select(1, 0).contiguous();
    out.predicted.assign(predicted.data_ptr<int64_t>(), predicted.data_ptr<int64_t>() + predicted.numel());
    out.confidence.assign(confidence.data_ptr<double>(), confidence.data_ptr<double>() + confidence.numel());
  }
  if (options.temperature != 1.0 && !out.uncalibrated) out.uncalibrated = EvalCounts(c);
  out.report = make_report(out.counts, class_names);
  auto labels = set.size() > 0 ? set.labels.to(torch::kCPU, torch::kInt64).contiguous() : torch::Tensor();
  for (size_t i = 0; i < out.predicted.size(); ++i) {
    const bool hit = out.predicted[i] == labels.data_ptr<int64_t>()[i];
    (hit ? out.report.confidences_correct : out.report.confidences_wrong).push_back(out.confidence[i]);
  }
  return out;
}

SplitEvaluation evaluate_sharded(Net& model, const ImageSet& set, const Normalization& norm,
                                 const EvalOptions& options, const std::vector<std::string>& class_names,
                                 DistributedContext& dist) {
  if (dist.world_size() == 1) return evaluate_split(model, set, norm, options, class_names);
  const auto [begin, end] = rank_range(set.size(), dist.rank(), dist.world_size());
  SplitEvaluation shard = evaluate_split(model, set.slice(begin, end), norm, options, class_names);
  const auto classes = static_cast<int64_t>(class_names.size());
  auto counts = shard.counts.to_tensor();
  dist.all_reduce_sum(counts);
  shard.counts = EvalCounts::from_tensor(counts, classes);
  if (shard.uncalibrated) {
    auto raw = shard.uncalibrated->to_tensor();
    dist.all_reduce_sum(raw);
    shard.uncalibrated = EvalCounts::from_tensor(raw, classes);
  }
  EvalReport report = make_report(shard.counts, class_names);
  report.confidences_correct = std::move(shard.report.confidences_correct);
  report.confidences_wrong = std::move(shard.report.confidences_wrong);
  shard.report = std::move(report);
  return shard;
}

}  // namespace cifar
