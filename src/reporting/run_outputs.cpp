#include "reporting/run_outputs.h"

#include <functional>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "reporting/gnuplot.h"
#include "reporting/html_report.h"
#include "reporting/plots.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

class RecordFiles final : public OutputSink {
 public:
  explicit RecordFiles(RunFolder folder) : folder_(std::move(folder)) {}
  void write(RunOutcome& outcome) override {
    if (!outcome.inference.is_null()) write_file_atomic(folder_.inference_file(), json_text(outcome.inference, 2) + "\n");
    write_file_atomic(folder_.summary_file(), json_text(outcome.summary, 2) + "\n");
  }

 private:
  RunFolder folder_;
};

// The original's visualisation stage: every plot it drew. Plots are
// extras: a missing or failing gnuplot costs the plot it was drawing (a
// warning), not the run or the report.
class Plots final : public OutputSink {
 public:
  explicit Plots(RunFolder folder) : folder_(std::move(folder)) {}
  void write(RunOutcome& outcome) override {
    if (!find_gnuplot()) {
      std::cerr << "warning: " << kGnuplotMissing << "\n";
      return;
    }
    auto draw = [&](const char* what, const std::function<fs::path()>& plot) {
      try {
        outcome.plots.push_back(plot());
      } catch (const std::exception& e) {
        std::cerr << "warning: no " << what << " plot: " << first_line(e.what()) << "\n";
      }
    };
    const fs::path dir = folder_.results();
    if (const auto history = history_of(outcome.summary); !history.empty()) {
      draw("training history", [&] { return plot_training_history(history, dir); });
    }
    if (!outcome.evaluation) return;
    const SplitEvaluation& evaluation = *outcome.evaluation;
    const EvalReport& r = evaluation.report;
    const int64_t c = r.confusion.size(0);
    auto counts = r.confusion.contiguous();
    std::vector<std::vector<int64_t>> matrix(c, std::vector<int64_t>(c));
    for (int64_t i = 0; i < c; ++i) {
      for (int64_t j = 0; j < c; ++j) matrix[i][j] = counts[i][j].item<int64_t>();
    }
    draw("confusion matrix", [&] { return plot_confusion_matrix(matrix, r.class_names, dir); });
    draw("class accuracy", [&] { return plot_class_accuracy(r.per_class_accuracy, r.class_names, dir); });
    const int64_t n = std::min<int64_t>({kMaxPredictionSamples, outcome.test_images.size(0),
                                         static_cast<int64_t>(evaluation.predicted.size())});
    auto labels = outcome.test_labels.slice(0, 0, n).to(torch::kInt64).contiguous();
    std::vector<int64_t> truth(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + n);
    std::vector<int64_t> predicted(evaluation.predicted.begin(), evaluation.predicted.begin() + n);
    std::vector<double> confidence(evaluation.confidence.begin(), evaluation.confidence.begin() + n);
    draw("sample predictions", [&] {
      return plot_prediction_samples(outcome.test_images.slice(0, 0, n), truth, predicted, confidence,
                                     r.class_names, dir);
    });
    draw("confidence", [&] { return plot_confidence_distribution(r.confidences_correct, r.confidences_wrong, dir); });
    std::optional<double> before;
    if (evaluation.uncalibrated) before = make_report(*evaluation.uncalibrated, r.class_names).ece;
    draw("reliability", [&] { return plot_reliability_diagram(r.reliability, r.ece, dir, before); });
  }

 private:
  // Every epoch's numbers from the summary's history.
  static std::vector<Logs> history_of(const nlohmann::json& summary) {
    std::vector<Logs> history;
    if (!summary.contains("history")) return history;
    for (const auto& row : summary["history"]) {
      Logs logs;
      for (const auto& [k, v] : row.items()) {
        if (k != "epoch" && v.is_number()) logs[k] = v.get<double>();
      }
      history.push_back(logs);
    }
    return history;
  }
  RunFolder folder_;
};

// The page that gathers the numbers and this run's plots (only these: an
// older PNG in results/ would show under a caption that does not apply).
class Report final : public OutputSink {
 public:
  explicit Report(RunFolder folder) : folder_(std::move(folder)) {}
  void write(RunOutcome& outcome) override {
    nlohmann::json page = {{"training", outcome.summary}, {"config", outcome.config}};
    if (!outcome.inference.is_null()) page["inference"] = outcome.inference;
    write_html_report(folder_.results(), page, outcome.plots);
  }

 private:
  RunFolder folder_;
};

}  // namespace

std::vector<std::unique_ptr<OutputSink>> make_output_sinks(const RunFolder& folder, bool visualize) {
  std::vector<std::unique_ptr<OutputSink>> sinks;
  sinks.push_back(std::make_unique<RecordFiles>(folder));
  if (visualize) {
    sinks.push_back(std::make_unique<Plots>(folder));
    sinks.push_back(std::make_unique<Report>(folder));
  }
  return sinks;
}

}  // namespace cifar
