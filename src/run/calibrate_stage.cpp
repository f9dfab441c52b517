#include "run/calibrate_stage.h"

#include <iostream>

#include "checkpoint/checkpoint.h"
#include "common/runtime.h"
#include "evaluation/calibration.h"
#include "evaluation/evaluate.h"
#include "models/registry.h"
#include "reporting/format.h"

namespace cifar {
namespace {

double fit_for(Net& net, const Splits& splits, const Normalization& norm, const EvalOptions& options) {
  return fit_temperature(predict_logits(net, splits.val.images, norm, options), splits.val.labels);
}

bool same_weights(Net& a, Net& b) {
  auto pa = a.parameters(), pb = b.parameters();
  auto ba = a.buffers(), bb = b.buffers();
  if (pa.size() != pb.size() || ba.size() != bb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i) {
    if (!torch::equal(pa[i].detach().cpu(), pb[i].detach().cpu())) return false;
  }
  for (size_t i = 0; i < ba.size(); ++i) {
    if (!torch::equal(ba[i].detach().cpu(), bb[i].detach().cpu())) return false;
  }
  return true;
}

}  // namespace

double calibrate_temperature(const Config& config, const Splits& splits, RunModel& model,
                             const torch::Device& device, DistributedContext& dist, const RunFolder& folder) {
  if (config.run.calibration != "temperature" || splits.val.size() == 0) return 1.0;
  EvalOptions options;
  options.device = device;
  options.tta = config.run.tta;
  options.autocast = use_bf16_autocast(config.train.mixed_precision, device);
  const Normalization norm{model.spec.mean, model.spec.std};
  auto fitted = torch::tensor({dist.is_writer() ? fit_for(*model.net, splits, norm, options) : 0.0},
                              torch::kFloat64);
  dist.broadcast(fitted, 0);
  model.spec.temperature = fitted.item<double>();
  if (dist.is_writer()) {
    std::cout << "Calibration: temperature " << format_number(model.spec.temperature)
              << ", fitted on the " << splits.val.size() << " validation images\n";
    for (const auto& file : {folder.best_checkpoint(), folder.latest_checkpoint()}) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(file, ec)) continue;
      const LoadedModel saved = load_model(file.string(), device);
      const double t = same_weights(*saved.model, *model.net) ? model.spec.temperature
                                                               : fit_for(*saved.model, splits, norm, options);
      set_checkpoint_temperature(file.string(), t);
    }
  }
  dist.barrier();
  return model.spec.temperature;
}

}  // namespace cifar
