// What a run is built from once planned: the data, split as configured,
// and the model, from its checkpoint or its flags, on its device.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"
#include "distributed/context.h"
#include "distributed/environment.h"
#include "models/net.h"
#include "run/plan.h"

namespace cifar {

// Rank 0 downloads or extracts; the others wait, then find the files in
// place, so a missing archive is reported once and fetched once. An
// evaluation (--skip-training) reads the test batch only.
Splits load_data(const Config& config, DistributedContext& dist);

struct RunModel {
  NetPtr net;
  ModelSpec spec;       // the plan's, with the data's class names
  std::string weights;  // the checkpoint it came from, if any
  std::string pretrained_report;  // what --pretrained-weights loaded
};

// The plan's model for this data, on `device`: a checkpoint's weights
// (--load-model, an evaluation; a resume's come with its state in
// Trainer::resume), or fresh ones initialised as the architecture wants.
RunModel build_run_model(const RunPlan& plan, const Splits& splits, const torch::Device& device,
                         DistributedContext& dist);

// Each rank's share of a step's batch must hold two images for a
// batch-norm model: with a share of one at every step the trainer would
// leave every part out and train on nothing.
void check_batch_shares(const Config& config, const Splits& splits, Net& model, int world_size);

// --summary: the layer table of the plan's model, on rank 0.
void print_model_summary(const RunPlan& plan, const DistEnvironment& env);

}  // namespace cifar
