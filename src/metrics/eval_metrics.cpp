#include "metrics/eval_metrics.h"

#include <cmath>
#include <stdexcept>

#include "common/atomic_file.h"
#include "common/json_text.h"

namespace cifar {
namespace {

torch::Tensor zeros_i64(int64_t n) { return torch::zeros({n}, torch::kInt64); }
torch::Tensor zeros_f64(int64_t n) { return torch::zeros({n}, torch::kFloat64); }

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }
// Per-class ratios: with nothing to divide by the value does not exist, and
// a 0 would read as "the model got every one wrong" (and pull the mean
// down). NaN here, null in the JSON, "n/a" in the plot and the report.
double defined_ratio(double num, double den) { return den > 0 ? num / den : std::nan(""); }
// JSON has no NaN: nlohmann writes it as null anyway, but saying so keeps
// the intent visible.
nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

// Equal-width bins on [0,1]; 1.0 (and anything rounding above) falls in the last.
torch::Tensor bin_of(const torch::Tensor& confidence, int64_t bins) {
  return (confidence * static_cast<double>(bins)).floor().clamp(0, bins - 1).to(torch::kInt64);
}

std::vector<int64_t> to_vector_i64(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

nlohmann::json matrix_json(const torch::Tensor& m) {
  nlohmann::json rows = nlohmann::json::array();
  const bool integral = m.scalar_type() == torch::kInt64;
  for (int64_t i = 0; i < m.size(0); ++i) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t j = 0; j < m.size(1); ++j) {
      if (integral) {
        row.push_back(m[i][j].item<int64_t>());
      } else {
        row.push_back(m[i][j].item<double>());
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

TopK top_k_predictions(const torch::Tensor& logits, int64_t k) {
  torch::NoGradGuard no_grad;
  // float64 on CPU: exact for float32/bf16 logits, so ties survive the cast
  // and are ordered the same wherever the model ran.
  auto x = logits.detach().to(torch::kCPU, torch::kFloat64);
  if (x.dim() != 2) throw std::invalid_argument("top_k_predictions: logits must be [B,C]");
  k = std::min<int64_t>(k, x.size(1));
  // A stable descending sort, not topk: CPU topk returns tied classes in an
  // arbitrary order (all-zero logits over 10 classes give 8, 6, 7), so a
  // dead model's "prediction" would depend on the LibTorch build. Sorting 10
  // values per row costs nothing next to the forward pass.
  auto indices = std::get<1>(x.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true)).slice(1, 0, k);
  auto probs = torch::softmax(x, 1).gather(1, indices);
  return {indices, probs};
}

EvalCounts::EvalCounts(int64_t classes)
    : num_classes(classes),
      confusion(torch::zeros({classes, classes}, torch::kInt64)),
      bin_count(zeros_i64(kCalibrationBins)),
      bin_confidence(zeros_f64(kCalibrationBins)),
      bin_correct(zeros_i64(kCalibrationBins)),
      histogram_correct(zeros_i64(kConfidenceBins)),
      histogram_wrong(zeros_i64(kConfidenceBins)) {}

void EvalCounts::add(const torch::Tensor& logits_in, const torch::Tensor& labels_in) {
  torch::NoGradGuard no_grad;
  auto logits = logits_in.detach().to(torch::kCPU, torch::kFloat64);
  auto labels = labels_in.detach().to(torch::kCPU, torch::kInt64).reshape({-1});
  if (logits.dim() != 2 || logits.size(1) != num_classes || logits.size(0) != labels.size(0)) {
    throw std::invalid_argument("EvalCounts::add: logits must be [B," + std::to_string(num_classes) +
                                "] with B = number of labels");
  }
  const int64_t b = labels.size(0);
  if (b == 0) return;
  if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= num_classes) {
    throw std::invalid_argument("EvalCounts::add: label outside 0.." + std::to_string(num_classes - 1));
  }
  const int64_t c = num_classes;
  auto log_probs = torch::log_softmax(logits, 1);
  // Floored at -100 as torch's BCELoss floors its logs: TTA logits are logs
  // of float32 probabilities, which can underflow to 0, and one infinite
  // loss would make the mean (and the JSON) useless.
  loss_sum -= log_probs.gather(1, labels.view({-1, 1})).clamp_min(-100.0).sum().item<double>();

  auto top = top_k_predictions(logits, kTopK);
  auto predicted = top.indices.select(1, 0);
  auto confidence = top.probs.select(1, 0);
  auto hits = top.indices.eq(labels.view({-1, 1}));
  auto correct = hits.select(1, 0);
  auto wrong = correct.logical_not();
  top3_correct += hits.any(1).sum().item<int64_t>();
  confusion += torch::bincount(labels * c + predicted, {}, c * c).view({c, c});

  confidence_sum_correct += confidence.masked_select(correct).sum().item<double>();
  confidence_sum_wrong += confidence.masked_select(wrong).sum().item<double>();
  auto cal = bin_of(confidence, kCalibrationBins);
  bin_count += torch::bincount(cal, {}, kCalibrationBins);
  bin_confidence += torch::bincount(cal, confidence, kCalibrationBins);
  bin_correct += torch::bincount(cal.masked_select(correct), {}, kCalibrationBins);
  auto hist = bin_of(confidence, kConfidenceBins);
  histogram_correct += torch::bincount(hist.masked_select(correct), {}, kConfidenceBins);
  histogram_wrong += torch::bincount(hist.masked_select(wrong), {}, kConfidenceBins);
}

void EvalCounts::merge(const EvalCounts& o) {
  if (o.num_classes != num_classes) {
    throw std::invalid_argument("EvalCounts::merge: class counts differ (" + std::to_string(num_classes) +
                                " vs " + std::to_string(o.num_classes) + ")");
  }
  confusion += o.confusion;
  top3_correct += o.top3_correct;
  loss_sum += o.loss_sum;
  confidence_sum_correct += o.confidence_sum_correct;
  confidence_sum_wrong += o.confidence_sum_wrong;
  bin_count += o.bin_count;
  bin_confidence += o.bin_confidence;
  bin_correct += o.bin_correct;
  histogram_correct += o.histogram_correct;
  histogram_wrong += o.histogram_wrong;
}

int64_t EvalCounts::count() const { return confusion.sum().item<int64_t>(); }

int64_t EvalCounts::tensor_size(int64_t c) {
  return 4 + c * c + 3 * kCalibrationBins + 2 * kConfidenceBins;
}

torch::Tensor EvalCounts::to_tensor() const {
  auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat64).reshape({-1}); };
  auto scalars = torch::tensor(
      std::vector<double>{static_cast<double>(top3_correct), loss_sum, confidence_sum_correct,
                          confidence_sum_wrong},
      torch::kFloat64);
  return torch::cat({scalars, f(confusion), f(bin_count), f(bin_confidence), f(bin_correct),
                     f(histogram_correct), f(histogram_wrong)});
}

EvalCounts EvalCounts::from_tensor(const torch::Tensor& t_in, int64_t c) {
  auto t = t_in.detach().to(torch::kCPU, torch::kFloat64).reshape({-1});
  if (t.numel() != tensor_size(c)) {
    throw std::invalid_argument("EvalCounts::from_tensor: expected " + std::to_string(tensor_size(c)) +
                                " values for " + std::to_string(c) + " classes, got " +
                                std::to_string(t.numel()));
  }
  EvalCounts out(c);
  int64_t at = 0;
  auto take = [&](int64_t n) {
    auto s = t.slice(0, at, at + n);
    at += n;
    return s;
  };
  // Counts went through float64 (and maybe a sum across ranks): round, not truncate.
  auto counts = [&](int64_t n) { return take(n).round().to(torch::kInt64); };
  auto scalars = take(4);
  out.top3_correct = std::llround(scalars[0].item<double>());
  out.loss_sum = scalars[1].item<double>();
  out.confidence_sum_correct = scalars[2].item<double>();
  out.confidence_sum_wrong = scalars[3].item<double>();
  out.confusion = counts(c * c).view({c, c}).clone();
  out.bin_count = counts(kCalibrationBins);
  out.bin_confidence = take(kCalibrationBins).clone();
  out.bin_correct = counts(kCalibrationBins);
  out.histogram_correct = counts(kConfidenceBins);
  out.histogram_wrong = counts(kConfidenceBins);
  return out;
}

EvalReport make_report(const EvalCounts& counts, const std::vector<std::string>& class_names) {
  const int64_t c = counts.num_classes;
  if (static_cast<int64_t>(class_names.size()) != c) {
    throw std::invalid_argument("make_report: " + std::to_string(class_names.size()) +
                                " class names for " + std::to_string(c) + " classes");
  }
  EvalReport r;
  r.class_names = class_names;
  r.confusion = counts.confusion.clone();
  const auto m = r.confusion.accessor<int64_t, 2>();
  r.num_samples = counts.count();
  const double n = static_cast<double>(r.num_samples);
  int64_t hits = 0;
  for (int64_t i = 0; i < c; ++i) hits += m[i][i];
  r.accuracy = ratio(hits, n);
  r.top3_accuracy = ratio(counts.top3_correct, n);
  r.loss = ratio(counts.loss_sum, n);

  r.confusion_normalized = torch::zeros({c, c}, torch::kFloat64);
  auto norm = r.confusion_normalized.accessor<double, 2>();
  for (int64_t i = 0; i < c; ++i) {
    ClassMetrics k;
    k.name = class_names[i];
    for (int64_t j = 0; j < c; ++j) {
      k.support += m[i][j];
      k.predicted += m[j][i];
    }
    for (int64_t j = 0; j < c; ++j) norm[i][j] = ratio(m[i][j], k.support);
    k.recall = k.accuracy = defined_ratio(m[i][i], k.support);
    k.precision = defined_ratio(m[i][i], k.predicted);
    // 2PR/(P+R) in counts, 2TP/(2TP+FP+FN): defined whenever the class was
    // seen or predicted, even when one of P and R is not.
    k.f1 = defined_ratio(2.0 * m[i][i], k.support + k.predicted);
    r.per_class_accuracy.push_back(k.accuracy);
    r.per_class.push_back(std::move(k));
  }

  const auto bin_count = to_vector_i64(counts.bin_count);
  const auto bin_correct = to_vector_i64(counts.bin_correct);
  auto bin_conf = counts.bin_confidence.contiguous();
  for (int64_t b = 0; b < kCalibrationBins; ++b) {
    ReliabilityBin bin;
    bin.lo = static_cast<double>(b) / kCalibrationBins;
    bin.hi = static_cast<double>(b + 1) / kCalibrationBins;
    bin.count = bin_count[b];
    bin.accuracy = ratio(bin_correct[b], bin.count);
    bin.mean_confidence = ratio(bin_conf[b].item<double>(), bin.count);
    r.ece += ratio(bin.count, n) * std::abs(bin.accuracy - bin.mean_confidence);
    r.reliability.push_back(bin);
  }
  r.confidence_histogram_correct = to_vector_i64(counts.histogram_correct);
  r.confidence_histogram_wrong = to_vector_i64(counts.histogram_wrong);
  r.mean_confidence_correct = ratio(counts.confidence_sum_correct, hits);
  r.mean_confidence_wrong = ratio(counts.confidence_sum_wrong, n - hits);
  return r;
}

nlohmann::json results_json(const EvalReport& r, const ResultsInfo& info) {
  using nlohmann::json;
  json per_class = json::object();
  for (const auto& k : r.per_class) {
    per_class[k.name] = {{"accuracy", number_or_null(k.accuracy)},
                         {"precision", number_or_null(k.precision)},
                         {"recall", number_or_null(k.recall)},
                         {"f1", number_or_null(k.f1)},
                         {"support", k.support},
                         {"predicted", k.predicted}};
  }
  json bins = json::array();
  for (const auto& b : r.reliability) {
    bins.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count}, {"accuracy", b.accuracy},
                    {"mean_confidence", b.mean_confidence}});
  }
  auto sum = [](const std::vector<int64_t>& v) {
    int64_t s = 0;
    for (auto x : v) s += x;
    return s;
  };
  json j;
  j["format"] = "cifar10-inference-results";
  j["version"] = 1;
  j["accuracy"] = r.accuracy;
  j["top3_accuracy"] = r.top3_accuracy;
  j["loss"] = r.loss;
  // Said outright: training's val_loss includes label smoothing, this does not.
  j["loss_definition"] = std::string("mean cross-entropy of the reported probabilities") +
                         (info.tta ? " (averaged over the TTA views)" : "") +
                         (info.temperature != 1.0 ? " after temperature scaling" : "") + ", without label smoothing";
  j["num_samples"] = r.num_samples;
  if (info.without_tta) {
    j["without_tta"] = {{"accuracy", info.without_tta->accuracy},
                        {"top3_accuracy", info.without_tta->top3_accuracy},
                        {"loss", info.without_tta->loss}};
  }
  j["per_class"] = std::move(per_class);
  j["confusion_matrix"] = {{"rows", "true"},
                           {"columns", "predicted"},
                           {"counts", matrix_json(r.confusion)},
                           {"normalized", matrix_json(r.confusion_normalized)}};
  j["confidence"] = {
      {"bins", kConfidenceBins},
      {"correct",
       {{"count", sum(r.confidence_histogram_correct)},
        {"mean", r.mean_confidence_correct},
        {"histogram", r.confidence_histogram_correct}}},
      {"wrong",
       {{"count", sum(r.confidence_histogram_wrong)},
        {"mean", r.mean_confidence_wrong},
        {"histogram", r.confidence_histogram_wrong}}}};
  j["calibration"] = {{"temperature", info.temperature}, {"ece", r.ece}, {"num_bins", kCalibrationBins},
                      {"bins", std::move(bins)}};
  if (info.ece_uncalibrated) j["calibration"]["ece_uncalibrated"] = *info.ece_uncalibrated;
  j["class_names"] = r.class_names;
  j["model"] = info.model;
  j["checkpoint"] = info.checkpoint;
  j["data"] = info.data;
  j["tta"] = info.tta;
  return j;
}

void write_results_json(const std::filesystem::path& path, const EvalReport& report,
                        const ResultsInfo& info) {
  write_file_atomic(path, json_text(results_json(report, info), 2) + "\n");
}

}  // namespace cifar
