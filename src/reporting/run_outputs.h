// The end of a run: its record files, plots and HTML report, each an
// OutputSink given the same outcome, in order (the report shows the plots
// drawn before it).
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "evaluation/evaluate.h"
#include "outputs/run_folder.h"

namespace cifar {

struct RunOutcome {
  nlohmann::json config;     // the configuration shown (results/config.json's)
  nlohmann::json summary;    // training_summary.json
  nlohmann::json inference;  // inference_results.json; null without an evaluation
  // The test split's evaluation, and its first images and labels (those
  // rank 0 evaluated), for the plots; null without an evaluation.
  const SplitEvaluation* evaluation = nullptr;
  torch::Tensor test_images;  // uint8 [N,3,H,W]
  torch::Tensor test_labels;  // int64 [N]
  std::vector<std::filesystem::path> plots;  // this run's, drawn by the plot sink
};

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void write(RunOutcome& outcome) = 0;
};

// The record files (training_summary.json, inference_results.json), then,
// with `visualize`, the plots and the HTML report.
std::vector<std::unique_ptr<OutputSink>> make_output_sinks(const RunFolder& folder, bool visualize);

}  // namespace cifar
