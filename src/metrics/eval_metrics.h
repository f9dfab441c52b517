// Evaluation metrics kept as counts and sums (EvalCounts), so shards of a
// split -- batches, or ranks after one all-reduce of to_tensor() -- merge by
// addition, and everything reported is derived once at the end (EvalReport,
// then inference_results.json).
//
// Conventions (each pinned by a test in tests/metrics/metrics_test.cpp):
//  * Prediction and top-k come from one ranking of the logits
//    (top_k_predictions): the top-1 prediction is its first entry, so it is
//    always in the top-3, and equal logits rank the lower class index first.
//    torch::topk is not used: CPU topk returns ties in an arbitrary order
//    (all-zero logits over 10 classes come back as 8, 6, 7).
//  * A per-class ratio whose denominator is zero does not exist: NaN in
//    ClassMetrics and per_class_accuracy, null in the JSON, "n/a" in the
//    plot (not scikit-learn's zero_division=0, which reads as "all wrong"
//    and drags a mean down). A class absent from the labels has accuracy
//    and recall NaN; a class never predicted has precision NaN; F1 is
//    2*hits / (support + predicted), NaN only when both are 0. A row of an
//    absent class in the normalised confusion matrix is all zeros. Whole-
//    split ratios (accuracy, ECE, ...) of an empty split are 0.
//  * Confidence is the softmax probability of the predicted class. Bins are
//    equal-width on [0,1], half-open [lo, hi) except the last, which
//    includes 1.0.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cifar {

constexpr int64_t kCalibrationBins = 15;  // Guo et al. 2017's ECE uses 15
constexpr int64_t kConfidenceBins = 20;   // histograms of correct / wrong confidence
constexpr int64_t kTopK = 3;

// The k highest classes per row, best first, with their softmax
// probabilities: the one definition of "prediction" shared by EvalCounts,
// evaluate_split and predict. Ties: lower class index first. logits [B,C]
// on any device; returns CPU tensors int64 [B,k'] and float64 [B,k'] with
// k' = min(k, C).
struct TopK {
  torch::Tensor indices;
  torch::Tensor probs;
};
TopK top_k_predictions(const torch::Tensor& logits, int64_t k);

struct EvalCounts {
  int64_t num_classes = 0;
  torch::Tensor confusion;         // int64 [C,C] on CPU; row = true label, column = predicted
  int64_t top3_correct = 0;        // label among the 3 highest logits
  double loss_sum = 0;             // sum of per-sample cross-entropy (no smoothing)
  double confidence_sum_correct = 0;
  double confidence_sum_wrong = 0;
  torch::Tensor bin_count;         // int64 [15] samples per calibration bin
  torch::Tensor bin_confidence;    // float64 [15] sum of confidence per bin
  torch::Tensor bin_correct;       // int64 [15] top-1 hits per bin
  torch::Tensor histogram_correct; // int64 [20] confidence histogram of hits
  torch::Tensor histogram_wrong;   // int64 [20] confidence histogram of misses

  explicit EvalCounts(int64_t num_classes = 0);

  // logits: [B,C] on any device, any float type (log-probabilities, such as
  // predict_logits' TTA output, are valid logits); labels: int64 [B].
  void add(const torch::Tensor& logits, const torch::Tensor& labels);
  void merge(const EvalCounts& other);
  int64_t count() const;

  // Everything as one float64 vector (int64 counts stay exact below 2^53),
  // so a distributed reduction is a single all-reduce(SUM). The class count
  // is not in it -- summing it would multiply it -- so from_tensor takes it.
  torch::Tensor to_tensor() const;
  static EvalCounts from_tensor(const torch::Tensor& t, int64_t num_classes);
  static int64_t tensor_size(int64_t num_classes);
};

struct ClassMetrics {
  std::string name;
  double accuracy = 0;   // = recall: hits / support (NaN when support is 0)
  double precision = 0;  // hits / predicted (NaN when predicted is 0)
  double recall = 0;
  double f1 = 0;
  int64_t support = 0;    // samples whose true label is this class
  int64_t predicted = 0;  // samples predicted as this class
};

struct ReliabilityBin {
  double lo = 0, hi = 0;
  int64_t count = 0;
  double accuracy = 0;         // 0 when count is 0
  double mean_confidence = 0;  // 0 when count is 0
};

// Everything derived from EvalCounts, as plain C++ for the plots and the
// JSON writer.
struct EvalReport {
  std::vector<std::string> class_names;
  int64_t num_samples = 0;
  double accuracy = 0;
  double top3_accuracy = 0;
  double loss = 0;  // mean cross-entropy
  std::vector<ClassMetrics> per_class;
  std::vector<double> per_class_accuracy;  // [C], the same numbers as per_class[i].accuracy (NaN: no samples)
  torch::Tensor confusion;                 // int64 [C,C], row = true label
  torch::Tensor confusion_normalized;      // float64 [C,C], rows sum to 1 (or 0 if absent)
  double ece = 0;                          // sum_b count_b/N * |accuracy_b - confidence_b|
  std::vector<ReliabilityBin> reliability; // kCalibrationBins entries, empty bins included
  double mean_confidence_correct = 0;
  double mean_confidence_wrong = 0;
  std::vector<int64_t> confidence_histogram_correct;  // kConfidenceBins counts on [0,1]
  std::vector<int64_t> confidence_histogram_wrong;
  // Per-sample confidences, for plots that want the raw values. Filled by
  // evaluate_split; empty when the report is made from counts alone (after a
  // distributed reduction only the histograms above exist).
  std::vector<double> confidences_correct;
  std::vector<double> confidences_wrong;
};

EvalReport make_report(const EvalCounts& counts, const std::vector<std::string>& class_names);

// Accuracy, top-3 and loss of one way of evaluating a split.
struct Figures {
  double accuracy = 0;
  double top3_accuracy = 0;
  double loss = 0;
};

// What the numbers were measured with, for the record.
struct ResultsInfo {
  nlohmann::json model;    // spec_to_json(spec)
  std::string checkpoint;  // path of the checkpoint evaluated
  std::string data;        // e.g. "test_batch.bin (10000 images)"
  bool tta = false;
  double temperature = 1.0;                // dividing the logits (calibration)
  std::optional<double> ece_uncalibrated;  // before it, when it is not 1
  std::optional<Figures> without_tta;      // the same images, one view each
};

// The inference_results.json document. Keys:
//   format ("cifar10-inference-results"), version (1),
//   accuracy, top3_accuracy, loss, loss_definition, num_samples,
//   without_tta {accuracy, top3_accuracy, loss} (with TTA),
//   per_class {name: {accuracy, precision, recall, f1, support, predicted}}
//     (a ratio with nothing to divide by is null: see the conventions above),
//   confusion_matrix {rows: "true", columns: "predicted", counts [[int]], normalized [[float]]},
//   confidence {bins, correct: {count, mean, histogram [int]}, wrong: {...}},
//   calibration {temperature, ece, ece_uncalibrated (with a temperature),
//     num_bins, bins: [{lo, hi, count, accuracy, mean_confidence}]},
//   class_names, model, checkpoint, data, tta.
nlohmann::json results_json(const EvalReport& report, const ResultsInfo& info);
void write_results_json(const std::filesystem::path& path, const EvalReport& report,
                        const ResultsInfo& info);

}  // namespace cifar
