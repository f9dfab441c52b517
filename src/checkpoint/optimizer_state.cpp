#include "checkpoint/optimizer_state.h"

#include <memory>
#include <sstream>
#include <utility>

#include "common/error.h"
#include "common/printable.h"
#include "common/torch_compat.h"
#include "checkpoint/archive_check.h"

namespace cifar {
namespace {

// Optimiser state by each parameter's place (group g, index i), in records
// "group_<g>/param_<i>". torch::optim's own save() keys it by the
// parameter's address, written as hex text by 1.x and read back as a
// decimal number by 2.x: a 1.x checkpoint resumed on 2.x loses its moments
// and then crashes. A place means the same in every version, and the
// state's own fields (step, exp_avg, ...) are written by torch::optim's
// per-state serialize(), whose field names both versions share.
std::string group_record(size_t g) { return "group_" + std::to_string(g); }
std::string param_record(size_t i) { return "param_" + std::to_string(i); }

// The --optimizer name of `optimizer` (the classes optim.cpp builds derive
// from these three), and an empty state of the kind it keeps.
std::string optimizer_kind(const torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<const torch::optim::AdamW*>(&optimizer)) return "adamw";
  if (dynamic_cast<const torch::optim::Adam*>(&optimizer)) return "adam";
  if (dynamic_cast<const torch::optim::SGD*>(&optimizer)) return "sgd";
  throw std::logic_error("checkpoints keep the state of Adam, AdamW and SGD only");
}

std::unique_ptr<torch::optim::OptimizerParamState> empty_state(const std::string& kind) {
  if (kind == "adamw") return std::make_unique<torch::optim::AdamWParamState>();
  if (kind == "adam") return std::make_unique<torch::optim::AdamParamState>();
  return std::make_unique<torch::optim::SGDParamState>();
}

}  // namespace

std::string optimizer_archive_bytes(torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  const auto& groups = optimizer.param_groups();
  archive.write("kind", c10::IValue(optimizer_kind(optimizer)));
  archive.write("groups", c10::IValue(static_cast<int64_t>(groups.size())));
  for (size_t g = 0; g < groups.size(); ++g) {
    torch::serialize::OutputArchive group, options;
    groups[g].options().serialize(options);
    group.write("options", options);
    group.write("params", c10::IValue(static_cast<int64_t>(groups[g].params().size())));
    for (size_t i = 0; i < groups[g].params().size(); ++i) {
      auto it = optimizer.state().find(compat::optimizer_state_key(groups[g].params()[i]));
      if (it == optimizer.state().end()) continue;  // no step has touched it yet
      torch::serialize::OutputArchive state;
      it->second->serialize(state);
      group.write(param_record(i), state);
    }
    archive.write(group_record(g), group);
  }
  std::ostringstream out(std::ios::binary);
  archive.save_to(out);
  return out.str();
}

// The state tensors the optimisers we build keep, each of which must be
// shaped like its parameter.
std::vector<torch::Tensor> state_tensors(const torch::optim::OptimizerParamState& state) {
  if (auto* a = dynamic_cast<const torch::optim::AdamParamState*>(&state)) {
    return {a->exp_avg(), a->exp_avg_sq(), a->max_exp_avg_sq()};
  }
  if (auto* w = dynamic_cast<const torch::optim::AdamWParamState*>(&state)) {
    return {w->exp_avg(), w->exp_avg_sq(), w->max_exp_avg_sq()};
  }
  if (auto* s = dynamic_cast<const torch::optim::SGDParamState*>(&state)) return {s->momentum_buffer()};
  return {};
}

namespace {

UserError damaged_optimizer_state(const std::string& path, const std::string& what) {
  return UserError("optimiser state in " + path + " is damaged: " + what +
                   " (hint: resume from another checkpoint, or start from its weights with --load-model)");
}

int64_t read_count(torch::serialize::InputArchive& archive, const char* key, const std::string& path) {
  c10::IValue v;
  archive.read(key, v);
  if (!v.isInt() || v.toInt() < 0 || v.toInt() > (INT64_C(1) << 32)) {
    throw damaged_optimizer_state(path, std::string("bad '") + key + "' count");
  }
  return v.toInt();
}

}  // namespace

void load_optimizer_archive(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                            const std::string& path) {
  const std::string kind = optimizer_kind(optimizer);
  c10::IValue saved_kind;
  archive.read("kind", saved_kind);
  if (!saved_kind.isString()) throw damaged_optimizer_state(path, "bad optimiser kind");
  if (saved_kind.toStringRef() != kind) {
    throw UserError("optimiser state in " + path + " is " + printable(saved_kind.toStringRef()) +
                    "'s, this run's optimiser is " + kind + " (hint: resume with --optimizer " +
                    printable(saved_kind.toStringRef()) + ")");
  }
  auto& groups = optimizer.param_groups();
  const int64_t saved_groups = read_count(archive, "groups", path);
  if (saved_groups != static_cast<int64_t>(groups.size())) {
    throw UserError("optimiser state in " + path + " has " + std::to_string(saved_groups) +
                    " parameter groups, this run's optimiser " + std::to_string(groups.size()) +
                    " (hint: resume with the model and optimiser that wrote it)");
  }
  // Read whole before any of it is applied: a bad record leaves the
  // optimiser as it was.
  std::vector<std::pair<compat::OptimizerStateKey, std::unique_ptr<torch::optim::OptimizerParamState>>> states;
  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> options;
  for (size_t g = 0; g < groups.size(); ++g) {
    torch::serialize::InputArchive group, group_options;
    archive.read(group_record(g), group);
    const auto& params = groups[g].params();
    const int64_t saved_params = read_count(group, "params", path);
    if (saved_params != static_cast<int64_t>(params.size())) {
      throw UserError("optimiser state in " + path + " has " + std::to_string(saved_params) +
                      " parameters in group " + std::to_string(g) + ", this run's optimiser " +
                      std::to_string(params.size()) + " (hint: resume with the model that wrote it)");
    }
    group.read("options", group_options);
    options.push_back(groups[g].options().clone());
    options.back()->serialize(group_options);
    for (size_t i = 0; i < params.size(); ++i) {
      torch::serialize::InputArchive record;
      if (!group.try_read(param_record(i), record)) continue;
      auto state = empty_state(kind);
      state->serialize(record);
      for (const auto& t : state_tensors(*state)) {
        if (!t.defined()) continue;
        check_within_storage(t, path, "an optimiser state tensor");
        if (t.sizes() != params[i].sizes() || t.scalar_type() != params[i].scalar_type()) {
          throw UserError("optimiser state in " + path + " does not match this run: parameter " + std::to_string(i) +
                          " of group " + std::to_string(g) + " is " + c10::toString(params[i].scalar_type()) +
                          c10::str(params[i].sizes()) + ", its state " + c10::toString(t.scalar_type()) +
                          c10::str(t.sizes()));
        }
      }
      states.emplace_back(compat::optimizer_state_key(params[i]), std::move(state));
    }
  }
  optimizer.state().clear();
  for (auto& [key, state] : states) optimizer.state()[key] = std::move(state);
  for (size_t g = 0; g < groups.size(); ++g) groups[g].set_options(std::move(options[g]));
}

}  // namespace cifar
