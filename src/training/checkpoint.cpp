#include "training/checkpoint.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/printable.h"
#include "common/torch_compat.h"
#include "models/registry.h"
#include "training/archive_check.h"

namespace cifar {
namespace {

// Layout on disk: a torch archive with "meta" (JSON string), "model" and
// "optimizer" (nested serialized archives as byte tensors).
torch::Tensor bytes_to_tensor(const std::string& bytes) {
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

std::string tensor_to_bytes(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

template <class Saveable>
std::string archive_bytes(Saveable& s) {
  torch::serialize::OutputArchive archive;
  s.save(archive);
  std::ostringstream out(std::ios::binary);
  archive.save_to(out);
  return out.str();
}


torch::serialize::InputArchive archive_from(std::string_view bytes, const std::string& source,
                                            const torch::Device& device = torch::kCPU) {
  check_archive(bytes, source);
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), device);
  return archive;
}

// LibTorch's messages quote the archive's bytes (a TorchScript token) raw.
std::string torch_message(const std::string& what) { return printable(first_line(what)); }

}  // namespace

void save_checkpoint(const std::string& path, Net& model, const ModelSpec& spec,
                     torch::optim::Optimizer* optimizer, nlohmann::json meta) {
  meta["format"] = kCheckpointFormat;
  meta["version"] = kCheckpointVersion;
  meta["spec"] = spec_to_json(spec);
  meta["torch_version"] = compat::torch_version();
  torch::serialize::OutputArchive root;
  root.write("meta", c10::IValue(meta.dump()));
  root.write("model", bytes_to_tensor(archive_bytes(model)));
  if (optimizer) root.write("optimizer", bytes_to_tensor(archive_bytes(*optimizer)));
  std::ostringstream out(std::ios::binary);
  root.save_to(out);
  write_file_atomic(path, out.str());
}

CheckpointData read_checkpoint(const std::string& path) { return parse_checkpoint(read_file(path), path); }

CheckpointData parse_checkpoint(std::string_view bytes, const std::string& source) {
  CheckpointData data;
  try {
    auto root = archive_from(bytes, source);
    c10::IValue meta;
    root.read("meta", meta);
    data.meta = nlohmann::json::parse(meta.toStringRef());
    torch::Tensor t;
    root.read("model", t);
    check_input(t.scalar_type() == torch::kUInt8 && t.dim() == 1, "model record is not a byte tensor");
    check_within_storage(t, source, "its model record");
    data.model_bytes = tensor_to_bytes(t);
    torch::Tensor o;
    if (root.try_read("optimizer", o)) {
      check_input(o.scalar_type() == torch::kUInt8 && o.dim() == 1, "optimizer record is not a byte tensor");
      check_within_storage(o, source, "its optimizer record");
      data.optimizer_bytes = tensor_to_bytes(o);
    }
  } catch (const UserError& e) {
    if (std::string(e.what()).find(source) != std::string::npos) throw;
    throw UserError("cannot read checkpoint " + source + ": " + e.what());
  } catch (const std::exception& e) {
    throw UserError("cannot read checkpoint " + source +
                    ": not a cifar10 checkpoint, or truncated (hint: pass a file written by cifar10, "
                    "e.g. checkpoints/best_model.pt)");
  }
  check_checkpoint_meta(data.meta, source);
  return data;
}

void check_checkpoint_meta(const nlohmann::json& meta, const std::string& source) {
  // Each field's type is checked before it is read: nlohmann's value() and
  // get<>() throw type errors that would reach the user as json jargon.
  auto format = meta.is_object() ? meta.find("format") : meta.end();
  if (!meta.is_object() || format == meta.end() || !format->is_string() ||
      format->get<std::string>() != kCheckpointFormat) {
    throw UserError("cannot read checkpoint " + source + ": not a cifar10 checkpoint");
  }
  auto version = meta.find("version");
  if (version == meta.end() || !version->is_number_integer() || version->get<int64_t>() < 1) {
    throw UserError("checkpoint " + source + " has no valid format version (corrupt?)");
  }
  if (version->get<int64_t>() > kCheckpointVersion) {
    throw UserError("checkpoint " + source + " has format version " + std::to_string(version->get<int64_t>()) +
                    ", newer than this cifar10 reads (" + std::to_string(kCheckpointVersion) +
                    "); upgrade cifar10");
  }
  if (!meta.contains("spec")) throw UserError("checkpoint " + source + " has no model description");
  try {
    spec_from_json(meta.at("spec"));
  } catch (const UserError& e) {
    throw UserError("checkpoint " + source + ": " + e.what());
  }
}

ResumePoint resume_point(const nlohmann::json& meta, const std::string& source) {
  const std::string hint = " (hint: resume from a checkpoint this version wrote)";
  auto integer = [&](const char* key, int64_t max) {
    auto it = meta.find(key);
    if (it == meta.end() || !it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > max) {
      throw UserError("checkpoint " + source + " lacks a valid '" + key + "' to resume from" + hint);
    }
    return it->get<int64_t>();
  };
  ResumePoint p;
  p.epoch = static_cast<int>(integer("epoch", 1000000));
  p.step_in_epoch = integer("step_in_epoch", INT64_C(1) << 40);
  p.global_step = integer("global_step", INT64_C(1) << 50);
  auto lr = meta.find("learning_rate");
  if (lr == meta.end() || !lr->is_number() || !std::isfinite(lr->get<double>()) || lr->get<double>() < 0) {
    throw UserError("checkpoint " + source + " lacks a valid 'learning_rate' to resume from" + hint);
  }
  p.learning_rate = lr->get<double>();
  if (auto partial = meta.find("partial"); partial != meta.end()) {
    bool ok = partial->is_array() && partial->size() == 4;
    for (size_t i = 0; ok && i < 4; ++i) {
      ok = (*partial)[i].is_number() && std::isfinite((*partial)[i].get<double>());
    }
    if (!ok) throw UserError("checkpoint " + source + " has malformed partial-epoch sums" + hint);
    p.partial = partial->get<std::vector<double>>();
  }
  auto callbacks = meta.find("callbacks");
  if (callbacks == meta.end() || !callbacks->is_object()) {
    throw UserError("checkpoint " + source + " lacks the callbacks' state" + hint);
  }
  p.callbacks = *callbacks;
  return p;
}

void load_model_state(const CheckpointData& data, Net& model, const std::string& path,
                      const torch::Device& device) {
  try {
    // Module::load() set_()s each parameter to the tensor read, shape and
    // storage included: both are checked against what the model needs.
    std::vector<std::pair<std::vector<int64_t>, torch::ScalarType>> expected;
    for (const auto& p : model.parameters()) expected.emplace_back(p.sizes().vec(), p.scalar_type());
    for (const auto& b : model.buffers()) expected.emplace_back(b.sizes().vec(), b.scalar_type());
    auto archive = archive_from(data.model_bytes, path, device);
    model.load(archive);
    size_t i = 0;
    auto check = [&](const std::string& name, const torch::Tensor& value) {
      const auto& [sizes, type] = expected.at(i);
      if (value.sizes().vec() != sizes || value.scalar_type() != type) {
        throw UserError("checkpoint " + path + " does not match the model it describes: '" + name + "' is " +
                        c10::toString(value.scalar_type()) + c10::str(value.sizes()) + " in the file, " +
                        c10::toString(type) + c10::str(sizes) + " in the model");
      }
      check_within_storage(value, path, "tensor '" + name + "'");
      ++i;
    };
    for (const auto& p : model.named_parameters()) check(p.key(), p.value());
    for (const auto& b : model.named_buffers()) check(b.key(), b.value());
  } catch (const UserError&) {
    throw;
  } catch (const c10::Error& e) {
    throw UserError("checkpoint " + path + " does not match the model it describes: " +
                    torch_message(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    // torch::jit::ErrorReport (a damaged code/ record) is no c10::Error,
    // and its message spans lines: found by fuzz/checkpoint_fuzz.
    throw UserError("checkpoint " + path + " holds a damaged model archive: " + torch_message(e.what()));
  }
}

void load_optimizer_state(const CheckpointData& data, torch::optim::Optimizer& optimizer,
                          const std::string& path, const torch::Device& device) {
  if (data.optimizer_bytes.empty()) {
    throw UserError("checkpoint " + path + " holds no optimiser state, so it cannot be resumed "
                    "(hint: use --load-model to start from its weights)");
  }
  try {
    auto archive = archive_from(data.optimizer_bytes, path, device);
    optimizer.load(archive);
    // The state tensors the optimisers we build (optim.cpp) keep.
    for (const auto& [key, state] : optimizer.state()) {
      std::vector<torch::Tensor> tensors;
      if (auto* a = dynamic_cast<torch::optim::AdamParamState*>(state.get())) {
        tensors = {a->exp_avg(), a->exp_avg_sq(), a->max_exp_avg_sq()};
      } else if (auto* w = dynamic_cast<torch::optim::AdamWParamState*>(state.get())) {
        tensors = {w->exp_avg(), w->exp_avg_sq(), w->max_exp_avg_sq()};
      } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(state.get())) {
        tensors = {s->momentum_buffer()};
      }
      for (const auto& t : tensors) check_within_storage(t, path, "an optimiser state tensor");
    }
  } catch (const UserError&) {
    throw;
  } catch (const c10::Error& e) {
    throw UserError("optimiser state in " + path + " does not match this run: " +
                    torch_message(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw UserError("checkpoint " + path + " holds a damaged optimiser archive: " + torch_message(e.what()));
  }
}

LoadedModel load_model(const std::string& path, const torch::Device& device) {
  LoadedModel out;
  auto data = read_checkpoint(path);
  out.meta = data.meta;
  out.spec = spec_from_json(data.meta.at("spec"));
  out.model = build_model(out.spec);
  out.model->to(device);
  load_model_state(data, *out.model, path, device);
  out.model->eval();
  return out;
}

}  // namespace cifar
