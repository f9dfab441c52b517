// The report's sections (headline cards, model, data, training, test),
// each a table a person reads, from the run's JSON files.
#pragma once
#include <sstream>

#include "reporting/html_writer.h"

namespace cifar::html {

// The run's parts, as the run writes them.
// training: training_summary.json (run/record.cpp and the stages: model,
// parameters, data, epochs_run, stop_reason, wall_seconds, train_seconds,
// images_per_second, history, best_epoch, best_metrics, test, eval_seconds,
// device, threads, world_size, version, torch_version).
// inference: inference_results.json (metrics/eval_metrics.cpp
// results_json: accuracy, top3_accuracy, loss, num_samples, per_class,
// class_names, confidence, calibration, model, checkpoint, data, tta).
struct Parts {
  const json* training = nullptr;
  const json* inference = nullptr;
  const json* config = nullptr;
  // Test figures: inference_results.json's, else the training record's
  // copy ("test"), which is all an evaluation-less page has.
  const json* test = nullptr;
  const json* model = nullptr;
};

void headline(std::ostringstream& out, const Parts& p);
void model_section(std::ostringstream& out, const Parts& p);
void data_section(std::ostringstream& out, const Parts& p);
void training_section(std::ostringstream& out, const Parts& p);
void test_section(std::ostringstream& out, const Parts& p);

}  // namespace cifar::html
