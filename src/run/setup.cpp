#include "run/setup.h"

#include <iostream>

#include "common/error.h"
#include "common/printable.h"
#include "data/cifar_reader.h"
#include "data/download.h"
#include "models/efficientnet.h"
#include "models/fastnet.h"
#include "models/registry.h"
#include "models/summary.h"
#include "training/trainer.h"

namespace cifar {
namespace {

std::string describe_classes(const std::vector<std::string>& names) {
  std::string list;
  // The names are a checkpoint's or a batches.meta.txt's: quoted printably.
  for (size_t i = 0; i < names.size() && i < 10; ++i) list += (i ? ", " : "") + printable(names[i], 32);
  if (names.size() > 10) list += ", ...";
  return std::to_string(names.size()) + " classes (" + list + ")";
}

}  // namespace

Splits load_data(const Config& config, DistributedContext& dist) {
  std::filesystem::path batches;
  // An evaluation needs the test batch only (the normalisation is the
  // checkpoint's), so a folder without the training batches serves it.
  const bool test_only = config.run.skip_training;
  if (dist.is_writer()) batches = obtain_cifar10(config.data, test_only);
  dist.barrier();
  if (!dist.is_writer()) batches = obtain_cifar10(config.data, test_only);
  const Cifar10 cifar = read_cifar10(batches, !test_only);
  Splits splits = make_splits(cifar, config.data, static_cast<uint64_t>(config.run.seed));
  if (dist.is_writer()) {
    std::cout << "Data: ";
    if (!test_only) std::cout << splits.train.size() << " train, " << splits.val.size() << " validation, ";
    std::cout << splits.test.size() << " test images from " << batches.string() << "\n";
  }
  return splits;
}

RunModel build_run_model(const RunPlan& plan, const Splits& splits, const torch::Device& device,
                         DistributedContext& dist) {
  const Config& config = plan.config;
  RunModel m;
  m.spec = plan.spec;
  if (plan.start) {
    m.weights = plan.start->path;
    if (m.spec.class_names != splits.class_names) {
      throw UserError("checkpoint " + m.weights + " was trained on " + describe_classes(m.spec.class_names) +
                      ", but this data has " + describe_classes(splits.class_names));
    }
  } else {
    m.spec.class_names = splits.class_names;
  }
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));
  m.net = build_model(m.spec);
  if (plan.start && !plan.start->resume) {
    load_model_state(*plan.start->checkpoint, *m.net, m.weights);
  } else if (!plan.start) {
    if (plan.pretrained) {
      m.pretrained_report = load_pretrained(*m.net, m.spec, plan.pretrained->tensors, plan.pretrained->file);
    }
    // The fast net's frozen first layer whitens 2x2 patches of this
    // training data (airbench); 5,000 images estimate the covariance well.
    if (m.spec.type == "fast") {
      const int64_t n = std::min<int64_t>(5000, splits.train.size());
      init_whitening(*m.net, normalize_images(splits.train.images.slice(0, 0, n), Normalization{m.spec.mean, m.spec.std}));
    }
  }
  // Where the Trainer would put it: an evaluation alone has no Trainer.
  m.net->to(device);
  // Training broadcasts rank 0's weights (Trainer); an evaluation does so
  // here, so ranks given different copies of "the same" checkpoint cannot
  // report a mixture of two models.
  if (config.run.skip_training) dist.broadcast_model(*m.net);
  return m;
}

void check_batch_shares(const Config& config, const Splits& splits, Net& model, int world_size) {
  if (config.run.skip_training || !has_batch_norm(model)) return;
  const int64_t batch = std::min<int64_t>(config.train.batch_size, splits.train.size());
  if (batch >= 2 * int64_t{world_size}) return;
  const std::string over = world_size > 1 ? " over " + std::to_string(world_size) + " ranks" : "";
  throw UserError("a training step of " + std::to_string(batch) + " image" + (batch == 1 ? "" : "s") + over +
                  " leaves a rank one image or none, which the model's batch norm cannot normalise (hint: use "
                  "--batch-size " + std::to_string(2 * world_size) + " or more" +
                  (splits.train.size() < config.train.batch_size ? " and a larger --train-limit" : "") + ")");
}

void print_model_summary(const RunPlan& plan, const DistEnvironment& env) {
  const Config& config = plan.config;
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));
  auto model = build_model(plan.spec);
  if (config.model.freeze_backbone && config.model.freeze_epochs > 0) set_backbone_trainable(*model, false);
  if (env.rank != 0) return;
  if (plan.start) std::cout << "The model in " << plan.start->path << ":\n";
  print_summary(*model, plan.spec, std::cout);
}

}  // namespace cifar
