#include "metrics/eval_metrics.h"

#include <cmath>
#include <fstream>
#include <limits>

#include "data/dataset.h"
#include "evaluation/evaluate.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "models/registry.h"
#include "reporting/plots.h"
#include "test_util.h"

namespace cifar {
namespace {

// Twelve samples over four classes, computed by hand. Logits are log(p) with
// rows summing to 1, so the softmax confidence is p itself. Confidences avoid
// the bin edges (multiples of 1/15 and 1/20). Class "d" never appears as a
// label; class "c" is never predicted. Samples 7, 9, 10 and 11 hold ties.
struct Sample {
  int64_t label;
  std::vector<double> p;
};
const std::vector<Sample> kSamples = {
    {0, {0.72, 0.12, 0.10, 0.06}},  // 1  pred 0 .72 hit
    {0, {0.52, 0.28, 0.12, 0.08}},  // 2  pred 0 .52 hit
    {0, {0.22, 0.62, 0.10, 0.06}},  // 3  pred 1 .62 miss, label 2nd
    {0, {0.91, 0.05, 0.03, 0.01}},  // 4  pred 0 .91 hit
    {1, {0.10, 0.82, 0.05, 0.03}},  // 5  pred 1 .82 hit
    {1, {0.42, 0.31, 0.17, 0.10}},  // 6  pred 0 .42 miss
    {1, {0.01, 0.01, 0.01, 0.97}},  // 7  pred 3 .97 miss; 0,1,2 tie: top-3 = 3,0,1 -> hit
    {2, {0.07, 0.07, 0.15, 0.71}},  // 8  pred 3 .71 miss
    {2, {0.57, 0.33, 0.05, 0.05}},  // 9  pred 0 .57 miss; 2,3 tie for 3rd: 2 wins -> hit
    {1, {0.46, 0.46, 0.04, 0.04}},  // 10 0,1 tie for 1st: pred 0 .46 miss
    {0, {0.46, 0.46, 0.04, 0.04}},  // 11 same tie: pred 0 .46 hit
    {2, {0.30, 0.41, 0.03, 0.26}},  // 12 pred 1 .41 miss, not in top 3
};
const std::vector<std::string> kNames = {"a", "b", "c", "d"};

torch::Tensor logits_of(size_t begin, size_t end) {
  std::vector<double> v;
  for (size_t i = begin; i < end; ++i)
    for (double p : kSamples[i].p) v.push_back(std::log(p));
  return torch::tensor(v, torch::kFloat64).view({static_cast<int64_t>(end - begin), 4});
}

torch::Tensor labels_of(size_t begin, size_t end) {
  std::vector<int64_t> v;
  for (size_t i = begin; i < end; ++i) v.push_back(kSamples[i].label);
  return torch::tensor(v, torch::kInt64);
}

EvalCounts counts_of(size_t begin, size_t end) {
  EvalCounts c(4);
  c.add(logits_of(begin, end), labels_of(begin, end));
  return c;
}

std::vector<int64_t> vec(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kInt64);
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(Metrics, TiesRankTheLowerClassFirst) {
  // torch::topk would give 8, 6, 7 here on CPU; the documented rule is 0, 1, 2.
  auto top = top_k_predictions(torch::zeros({2, 10}), 3);
  EXPECT_EQ(vec(top.indices), (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(vec(top_k_predictions(torch::zeros({1, 10}), 20).indices),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  auto tied = torch::tensor({0.1, 0.9, 0.5, 0.9, 0.5}, torch::kFloat32).view({1, 5});
  EXPECT_EQ(vec(top_k_predictions(tied, 3).indices), (std::vector<int64_t>{1, 3, 2}));
  // bf16 (autocast) logits rank the same: the ranking is done on CPU in float64.
  EXPECT_EQ(vec(top_k_predictions(tied.to(torch::kBFloat16), 3).indices),
            (std::vector<int64_t>{1, 3, 2}));
  EXPECT_NEAR(top_k_predictions(torch::zeros({1, 10}), 1).probs.item<double>(), 0.1, 1e-12);
}

TEST(Metrics, HandComputedCounts) {
  auto c = counts_of(0, kSamples.size());
  EXPECT_EQ(c.count(), 12);
  EXPECT_EQ(vec(c.confusion.flatten()),
            (std::vector<int64_t>{4, 1, 0, 0,  //
                                  2, 1, 0, 1,  //
                                  1, 1, 0, 1,  //
                                  0, 0, 0, 0}));
  EXPECT_EQ(c.top3_correct, 11);
  double loss = 0;
  for (const auto& s : kSamples) loss -= std::log(s.p[s.label]);
  EXPECT_NEAR(c.loss_sum, loss, 1e-9);
  EXPECT_NEAR(c.confidence_sum_correct, 0.72 + 0.52 + 0.91 + 0.82 + 0.46, 1e-9);
  EXPECT_NEAR(c.confidence_sum_wrong, 0.62 + 0.42 + 0.97 + 0.71 + 0.57 + 0.46 + 0.41, 1e-9);
  EXPECT_EQ(vec(c.bin_count), (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 4, 1, 1, 1, 2, 0, 1, 1, 1}));
  EXPECT_EQ(vec(c.bin_correct), (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0}));
  EXPECT_NEAR(c.bin_confidence[6].item<double>(), 0.42 + 0.46 + 0.46 + 0.41, 1e-9);
  EXPECT_NEAR(c.bin_confidence[10].item<double>(), 0.72 + 0.71, 1e-9);
  std::vector<int64_t> hist_correct(20, 0), hist_wrong(20, 0);
  for (int b : {9, 10, 14, 16, 18}) hist_correct[b] = 1;
  hist_wrong[8] = 2;
  for (int b : {9, 11, 12, 14, 19}) hist_wrong[b] = 1;
  EXPECT_EQ(vec(c.histogram_correct), hist_correct);
  EXPECT_EQ(vec(c.histogram_wrong), hist_wrong);
}

TEST(Metrics, HandComputedReportIncludingAbsentClasses) {
  auto r = make_report(counts_of(0, kSamples.size()), kNames);
  EXPECT_EQ(r.num_samples, 12);
  EXPECT_DOUBLE_EQ(r.accuracy, 5.0 / 12);
  EXPECT_DOUBLE_EQ(r.top3_accuracy, 11.0 / 12);
  ASSERT_EQ(r.per_class.size(), 4u);
  const auto& a = r.per_class[0];
  EXPECT_EQ(a.support, 5);
  EXPECT_EQ(a.predicted, 7);
  EXPECT_DOUBLE_EQ(a.recall, 0.8);
  EXPECT_DOUBLE_EQ(a.accuracy, 0.8);
  EXPECT_DOUBLE_EQ(a.precision, 4.0 / 7);
  EXPECT_NEAR(a.f1, 2.0 / 3, 1e-12);
  const auto& b = r.per_class[1];
  EXPECT_DOUBLE_EQ(b.recall, 0.25);
  EXPECT_DOUBLE_EQ(b.precision, 1.0 / 3);
  EXPECT_NEAR(b.f1, 2.0 / 7, 1e-12);
  // "c" is never predicted: precision 0/0 does not exist (NaN); recall 0/3;
  // F1 = 2*hits/(support+predicted) = 0/3.
  const auto& cc = r.per_class[2];
  EXPECT_EQ(cc.support, 3);
  EXPECT_EQ(cc.predicted, 0);
  EXPECT_TRUE(std::isnan(cc.precision));
  EXPECT_EQ(cc.recall, 0.0);
  EXPECT_EQ(cc.accuracy, 0.0);
  EXPECT_EQ(cc.f1, 0.0);
  // "d" never appears as a label: accuracy/recall 0/0 do not exist (NaN), so
  // the plot says n/a rather than 0%; predicted twice, never right, so its
  // precision (0/2) and F1 (0/2) are a real 0.
  const auto& d = r.per_class[3];
  EXPECT_EQ(d.support, 0);
  EXPECT_EQ(d.predicted, 2);
  EXPECT_TRUE(std::isnan(d.accuracy));
  EXPECT_TRUE(std::isnan(d.recall));
  EXPECT_EQ(d.precision, 0.0);
  EXPECT_EQ(d.f1, 0.0);
  ASSERT_EQ(r.per_class_accuracy.size(), 4u);
  EXPECT_EQ(r.per_class_accuracy[0], 0.8);
  EXPECT_EQ(r.per_class_accuracy[1], 0.25);
  EXPECT_EQ(r.per_class_accuracy[2], 0.0);  // seen and always missed: a real 0
  EXPECT_TRUE(std::isnan(r.per_class_accuracy[3]));

  EXPECT_DOUBLE_EQ(r.confusion_normalized[0][0].item<double>(), 0.8);
  EXPECT_DOUBLE_EQ(r.confusion_normalized[0][1].item<double>(), 0.2);
  EXPECT_DOUBLE_EQ(r.confusion_normalized[1][0].item<double>(), 0.5);
  EXPECT_EQ(r.confusion_normalized[3].sum().item<double>(), 0.0);
  EXPECT_EQ(r.confusion[2][3].item<int64_t>(), 1);

  // ECE = sum over bins |hits_b - confidence_sum_b| / N.
  const double ece = (0.75 + 0.48 + 0.57 + 0.62 + 0.43 + 0.18 + 0.09 + 0.97) / 12;
  EXPECT_NEAR(r.ece, ece, 1e-9);
  ASSERT_EQ(r.reliability.size(), 15u);
  EXPECT_DOUBLE_EQ(r.reliability[6].lo, 6.0 / 15);
  EXPECT_DOUBLE_EQ(r.reliability[6].hi, 7.0 / 15);
  EXPECT_EQ(r.reliability[6].count, 4);
  EXPECT_DOUBLE_EQ(r.reliability[6].accuracy, 0.25);
  EXPECT_NEAR(r.reliability[6].mean_confidence, 1.75 / 4, 1e-9);
  EXPECT_EQ(r.reliability[0].count, 0);
  EXPECT_EQ(r.reliability[0].accuracy, 0.0);
  EXPECT_DOUBLE_EQ(r.reliability[14].hi, 1.0);
  EXPECT_NEAR(r.mean_confidence_correct, 3.43 / 5, 1e-9);
  EXPECT_NEAR(r.mean_confidence_wrong, 4.16 / 7, 1e-9);
  double loss = 0;
  for (const auto& s : kSamples) loss -= std::log(s.p[s.label]);
  EXPECT_NEAR(r.loss, loss / 12, 1e-9);
}

TEST(Metrics, ZeroProbabilityGivesAFiniteLoss) {
  // TTA logits are log(mean probability): -inf where float32 underflowed.
  const double inf = std::numeric_limits<double>::infinity();
  EvalCounts c(3);
  c.add(torch::tensor({0.0, -inf, -inf}, torch::kFloat64).view({1, 3}), torch::tensor({1}, torch::kInt64));
  EXPECT_DOUBLE_EQ(c.loss_sum, 100.0);
  EXPECT_EQ(c.confusion[1][0].item<int64_t>(), 1);
  EXPECT_DOUBLE_EQ(c.confidence_sum_wrong, 1.0);
  EXPECT_EQ(c.bin_count[14].item<int64_t>(), 1);  // confidence 1.0 lands in the last bin
}

// Broken weights give NaN; a TTA average whose probability rounds to 0
// gives -inf, which is a fine log-probability and must pass.
TEST(Metrics, NonFiniteLogitsAreRefusedButMinusInfinityPasses) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_NO_THROW(check_finite_logits(torch::tensor({{0.0, -inf}, {-inf, 1.0}})));
  for (const auto& bad : {torch::tensor({{0.0, std::nan("")}, {1.0, 2.0}}), torch::tensor({{inf, 0.0}}),
                          torch::tensor({{-inf, -inf}})}) {
    EXPECT_THROW(check_finite_logits(bad), UserError) << bad;
  }
}

TEST(Metrics, MergeOfHalvesEqualsWhole) {
  auto whole = counts_of(0, 12);
  auto merged = counts_of(0, 5);
  merged.merge(counts_of(5, 12));
  EXPECT_TRUE(torch::equal(merged.confusion, whole.confusion));
  EXPECT_EQ(merged.top3_correct, whole.top3_correct);
  EXPECT_TRUE(torch::allclose(merged.to_tensor(), whole.to_tensor(), 0, 1e-12));
  EXPECT_THROW(merged.merge(EvalCounts(3)), std::invalid_argument);
}

TEST(Metrics, TensorRoundTripAndSumAsAllReduce) {
  auto whole = counts_of(0, 12);
  auto t = whole.to_tensor();
  EXPECT_EQ(t.numel(), EvalCounts::tensor_size(4));
  EXPECT_EQ(t.scalar_type(), torch::kFloat64);
  auto back = EvalCounts::from_tensor(t, 4);
  EXPECT_TRUE(torch::equal(back.to_tensor(), t));
  EXPECT_EQ(back.confusion.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(back.confusion, whole.confusion));
  // What an all-reduce(SUM) over two ranks produces.
  auto summed = EvalCounts::from_tensor(counts_of(0, 7).to_tensor() + counts_of(7, 12).to_tensor(), 4);
  EXPECT_TRUE(torch::equal(summed.confusion, whole.confusion));
  EXPECT_EQ(summed.top3_correct, 11);
  EXPECT_NEAR(make_report(summed, kNames).ece, make_report(whole, kNames).ece, 1e-12);
  EXPECT_THROW(EvalCounts::from_tensor(t, 3), std::invalid_argument);
}

TEST(Metrics, RejectsBadShapesAndLabels) {
  EvalCounts c(4);
  EXPECT_THROW(c.add(torch::zeros({2, 3}), torch::zeros({2}, torch::kInt64)), std::invalid_argument);
  EXPECT_THROW(c.add(torch::zeros({2, 4}), torch::tensor({0, 4}, torch::kInt64)), std::invalid_argument);
  c.add(torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64));
  EXPECT_EQ(c.count(), 0);
  auto r = make_report(c, kNames);  // empty: every ratio is 0, nothing divides by zero
  EXPECT_EQ(r.accuracy, 0.0);
  EXPECT_EQ(r.ece, 0.0);
}

TEST(ResultsJson, HoldsTheDocumentedKeys) {
  auto report = make_report(counts_of(0, 12), kNames);
  ResultsInfo info{{{"type", "cnn"}}, "runs/x/model.ckpt", "hand-made (12 samples)", true};
  testing::TempDir tmp("results");
  const auto path = tmp / "results" / "inference_results.json";
  write_results_json(path, report, info);
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);
  for (const char* key : {"format", "version", "accuracy", "top3_accuracy", "loss", "num_samples", "per_class",
                          "confusion_matrix", "confidence", "calibration", "class_names", "model",
                          "checkpoint", "data", "tta"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 5.0 / 12);
  EXPECT_EQ(j["num_samples"], 12);
  EXPECT_EQ(j["tta"], true);
  EXPECT_EQ(j["model"]["type"], "cnn");
  EXPECT_EQ(j["data"], "hand-made (12 samples)");
  EXPECT_EQ(j["class_names"], nlohmann::json(kNames));
  for (const char* key : {"accuracy", "precision", "recall", "f1", "support", "predicted"}) {
    EXPECT_TRUE(j["per_class"]["d"].contains(key)) << key;
  }
  EXPECT_EQ(j["per_class"]["d"]["support"], 0);
  EXPECT_EQ(j["per_class"]["d"]["precision"], 0.0);
  // Ratios with nothing to divide by are null, not 0.
  EXPECT_TRUE(j["per_class"]["d"]["accuracy"].is_null());
  EXPECT_TRUE(j["per_class"]["d"]["recall"].is_null());
  EXPECT_TRUE(j["per_class"]["c"]["precision"].is_null());
  EXPECT_EQ(j["per_class"]["c"]["accuracy"], 0.0);
  EXPECT_EQ(j["per_class"]["c"]["f1"], 0.0);
  EXPECT_EQ(j["confusion_matrix"]["counts"][1], nlohmann::json({2, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(j["confusion_matrix"]["normalized"][0][1].get<double>(), 0.2);
  EXPECT_EQ(j["confidence"]["correct"]["count"], 5);
  EXPECT_EQ(j["confidence"]["wrong"]["count"], 7);
  EXPECT_EQ(j["confidence"]["wrong"]["histogram"].size(), 20u);
  EXPECT_NEAR(j["confidence"]["correct"]["mean"].get<double>(), 3.43 / 5, 1e-9);
  EXPECT_EQ(j["calibration"]["bins"].size(), 15u);
  for (const char* key : {"lo", "hi", "count", "accuracy", "mean_confidence"}) {
    EXPECT_TRUE(j["calibration"]["bins"][6].contains(key)) << key;
  }
  EXPECT_EQ(j["calibration"]["bins"][6]["count"], 4);
  EXPECT_NEAR(j["calibration"]["ece"].get<double>(), report.ece, 1e-12);
}

// What the pipeline does with the report (plot_class_accuracy of
// per_class_accuracy, as reporting/plots_evaluation.cpp does): the class
// with no samples is drawn as n/a and left out of the mean, not drawn as 0%.
TEST(ResultsJson, AClassWithoutSamplesIsNaOnThePlotAndLeftOutOfTheMean) {
  auto report = make_report(counts_of(0, 12), kNames);
  testing::TempDir tmp("class_accuracy");
  plot_class_accuracy(report.per_class_accuracy, report.class_names, tmp.path());
  const std::string script = read_file(tmp / "class_accuracy.gp");
  const std::string data = read_file(tmp / "class_accuracy.dat");
  EXPECT_NE(script.find("set label 4 'n/a' at 3,"), std::string::npos) << script;
  EXPECT_EQ(script.find("set label 3 'n/a'"), std::string::npos) << "class c was seen: its 0% is real";
  // (80% + 25% + 0%) / 3 classes with samples, not / 4.
  EXPECT_NE(script.find("'mean 35.0%'"), std::string::npos) << script;
  EXPECT_NE(data.find("\n3 ? "), std::string::npos) << data;
  EXPECT_NE(data.find("\n2 0 "), std::string::npos) << data;
}

TEST(ResultsJson, ClassNamesThatAreNotUtf8AreWrittenNotThrown) {
  // A batches.meta.txt in Latin-1: "caf\xE9" made write_results_json throw
  // nlohmann's type_error 316 and lose the whole results file.
  std::vector<std::string> names = kNames;
  names[0] = "caf\xE9";
  auto report = make_report(counts_of(0, 12), names);
  testing::TempDir tmp("results");
  const auto path = tmp / "inference_results.json";
  write_results_json(path, report, ResultsInfo{{{"type", "cnn"}}, "runs/\xFF.ckpt", "hand-made", false});
  const auto j = nlohmann::json::parse(read_file(path));
  EXPECT_EQ(j["class_names"][0], "caf\xEF\xBF\xBD");
  EXPECT_TRUE(j["per_class"].contains("caf\xEF\xBF\xBD"));
  EXPECT_EQ(j["checkpoint"], "runs/\xEF\xBF\xBD.ckpt");
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 5.0 / 12);
}

TEST(EvaluateSplit, MatchesPredictLogitsOnRealImages) {
  auto test = read_cifar_batch(testing::batches_dir() / "test_batch.bin").slice(0, 300);
  auto names = read_class_names(testing::batches_dir() / "batches.meta.txt");
  torch::manual_seed(7);
  ModelConfig mc;
  mc.model_type = "cnn";
  auto model = build_model(make_spec(mc, names, {0.49, 0.48, 0.45}, {0.25, 0.24, 0.26}));
  const Normalization norm = make_normalization("standard");
  EvalOptions opt;
  opt.batch_size = 128;
  auto eval = evaluate_split(*model, test, norm, opt, names);
  ASSERT_EQ(eval.predicted.size(), 300u);
  ASSERT_EQ(eval.confidence.size(), 300u);
  EXPECT_EQ(eval.report.num_samples, 300);
  auto logits = predict_logits(*model, test.images, norm, opt);
  auto probs = torch::softmax(logits.to(torch::kFloat64), 1);
  int64_t hits = 0;
  for (int64_t i = 0; i < 300; ++i) {
    const int64_t pred = logits[i].argmax().item<int64_t>();
    EXPECT_EQ(eval.predicted[i], pred) << i;
    EXPECT_NEAR(eval.confidence[i], probs[i][pred].item<double>(), 1e-9) << i;
    hits += pred == test.labels[i].item<int64_t>();
  }
  EXPECT_EQ(static_cast<int64_t>(eval.report.confidences_correct.size()), hits);
  EXPECT_EQ(eval.report.confidences_correct.size() + eval.report.confidences_wrong.size(), 300u);
  EXPECT_DOUBLE_EQ(eval.report.accuracy, hits / 300.0);
  EXPECT_EQ(eval.counts.count(), 300);
}

}  // namespace
}  // namespace cifar
