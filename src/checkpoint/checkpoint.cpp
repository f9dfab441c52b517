#include "checkpoint/checkpoint.h"

#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"
#include "common/torch_compat.h"
#include "models/registry.h"
#include "checkpoint/archive_check.h"
#include "checkpoint/optimizer_state.h"

namespace cifar {
namespace {

// Layout on disk: a torch archive with "meta" (JSON string), "model",
// "optimizer" and "tensors" (nested serialized archives as byte tensors).
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
                     torch::optim::Optimizer* optimizer, nlohmann::json meta, const NamedTensors& tensors) {
  meta["format"] = kCheckpointFormat;
  meta["version"] = kCheckpointVersion;
  meta["spec"] = spec_to_json(spec);
  meta["torch_version"] = compat::torch_version();
  if (!tensors.empty()) {
    meta["tensors"] = nlohmann::json::array();
    for (const auto& entry : tensors) meta["tensors"].push_back(entry.first);
  }
  torch::serialize::OutputArchive root;
  root.write("meta", c10::IValue(json_text(meta)));
  root.write("model", bytes_to_tensor(archive_bytes(model)));
  if (optimizer) root.write("optimizer", bytes_to_tensor(optimizer_archive_bytes(*optimizer)));
  if (!tensors.empty()) {
    torch::serialize::OutputArchive named;
    for (const auto& [name, t] : tensors) named.write(name, t.detach().cpu(), /*is_buffer=*/true);
    std::ostringstream bytes(std::ios::binary);
    named.save_to(bytes);
    root.write("tensors", bytes_to_tensor(bytes.str()));
  }
  std::ostringstream out(std::ios::binary);
  root.save_to(out);
  write_file_atomic(path, out.str());
}

void set_checkpoint_temperature(const std::string& path, double temperature) {
  CheckpointData data = read_checkpoint(path);
  data.meta["spec"]["temperature"] = temperature;
  torch::serialize::OutputArchive root;
  root.write("meta", c10::IValue(json_text(data.meta)));
  root.write("model", bytes_to_tensor(data.model_bytes));
  if (!data.optimizer_bytes.empty()) root.write("optimizer", bytes_to_tensor(data.optimizer_bytes));
  if (!data.tensors_bytes.empty()) root.write("tensors", bytes_to_tensor(data.tensors_bytes));
  std::ostringstream out(std::ios::binary);
  root.save_to(out);
  write_file_atomic(path, out.str());
}

NamedTensors read_named_tensors(const CheckpointData& data, const std::string& path) {
  NamedTensors tensors;
  const auto names = data.meta.find("tensors");
  if (names == data.meta.end() || data.tensors_bytes.empty()) return tensors;
  if (!names->is_array() || names->size() > 100000) {
    throw UserError("checkpoint " + path + " has a malformed list of named tensors (corrupt?)");
  }
  try {
    auto archive = archive_from(data.tensors_bytes, path);
    for (const auto& name : *names) {
      if (!name.is_string()) throw UserError("checkpoint " + path + " names a tensor with a non-string");
      torch::Tensor t;
      archive.read(name.get<std::string>(), t, /*is_buffer=*/true);
      check_within_storage(t, path, "the named tensor " + printable(name.get<std::string>(), 60));
      tensors[name.get<std::string>()] = t;
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError("checkpoint " + path + ": its named tensors are unreadable (" + torch_message(e.what()) + ")");
  }
  return tensors;
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
    torch::Tensor n;
    if (root.try_read("tensors", n)) {
      check_input(n.scalar_type() == torch::kUInt8 && n.dim() == 1, "tensors record is not a byte tensor");
      check_within_storage(n, source, "its tensors record");
      data.tensors_bytes = tensor_to_bytes(n);
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
  if (auto totals = meta.find("totals"); totals != meta.end()) {
    auto number = [&](const char* key) {
      auto it = totals->is_object() ? totals->find(key) : totals->end();
      if (it == totals->end() || !it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) {
        throw UserError("checkpoint " + source + " has malformed run totals ('" + key + "')" + hint);
      }
      return it->get<double>();
    };
    p.train_seconds = number("train_seconds");
    p.wall_seconds = number("wall_seconds");
    p.images_trained = static_cast<int64_t>(std::min(number("images_trained"), 1e15));
  }
  if (meta.contains("threads")) p.threads = static_cast<int>(integer("threads", 4096));
  return p;
}

namespace {

// Every tensor of a module archive under the dotted name named_parameters()
// and named_buffers() give it: submodules are nested archives.
void collect_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                     std::map<std::string, torch::Tensor>& tensors) {
  for (const auto& key : archive.keys()) {
    torch::Tensor tensor;
    torch::serialize::InputArchive child;
    if (archive.try_read(key, tensor)) {
      tensors.emplace(prefix + key, tensor);
    } else if (archive.try_read(key, child)) {
      collect_tensors(child, prefix + key + ".", tensors);
    }
  }
}

// Module::load() set_()s each parameter to the tensor read, shape, type and
// storage included, and skips names the model lacks. So the file's tensors
// are checked against the model before it runs: LibTorch 1.13 checks none
// of this (a float32 tensor set into a float64 parameter was read past its
// storage by every forward pass), and 2.x only the storage's bounds, in its
// own words. A model description edited to a smaller model of the same
// family (fewer blocks) would otherwise load with part of the file unused.
void check_tensors_fit(torch::serialize::InputArchive& archive, Net& model, const std::string& path) {
  std::map<std::string, torch::Tensor> tensors;  // those the model has are taken out: the rest are extra
  collect_tensors(archive, "", tensors);
  auto check = [&](const std::string& name, const torch::Tensor& target) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) return;  // Module::load() names the missing one
    const torch::Tensor value = it->second;
    tensors.erase(it);
    if (value.sizes() != target.sizes() || value.scalar_type() != target.scalar_type()) {
      throw UserError("checkpoint " + path + " does not match the model it describes: '" + name + "' is " +
                      c10::toString(value.scalar_type()) + c10::str(value.sizes()) + " in the file, " +
                      c10::toString(target.scalar_type()) + c10::str(target.sizes()) + " in the model");
    }
    check_within_storage(value, path, "tensor '" + name + "'");
  };
  for (const auto& p : model.named_parameters()) check(p.key(), p.value());
  for (const auto& b : model.named_buffers()) check(b.key(), b.value());
  if (tensors.empty()) return;
  throw UserError("checkpoint " + path + " does not match the model it describes: it holds " +
                  std::to_string(tensors.size()) + " tensor" + (tensors.size() == 1 ? "" : "s") +
                  " the model lacks, such as '" + printable(tensors.begin()->first, 100) +
                  "' (hint: the file's model description was changed; use the checkpoint as cifar10 wrote it)");
}

}  // namespace

void load_model_state(const CheckpointData& data, Net& model, const std::string& path) {
  // Read onto the model's own device: Module::load() set_data()s a
  // parameter to a tensor on another device, so a CUDA model restoring its
  // best weights from a file read onto the CPU ended on the CPU, and its
  // evaluation failed on mismatched devices.
  const auto parameters = model.parameters();
  const torch::Device device = parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
  try {
    auto archive = archive_from(data.model_bytes, path, device);
    check_tensors_fit(archive, model, path);
    model.load(archive);
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
    if (data.meta.value("version", 1) >= 2) {
      load_optimizer_archive(archive, optimizer, path);
      return;
    }
    // Version 1 kept torch::optim's own layout, keyed by address: text a
    // 2.x LibTorch misreads when 1.x wrote it (the other way round works).
    const auto by = data.meta.find("torch_version");
    const std::string written_by = by != data.meta.end() && by->is_string() ? by->get<std::string>() : "";
    if (TORCH_VERSION_MAJOR >= 2 && written_by.rfind("1.", 0) == 0) {
      throw UserError("optimiser state in " + path + " was written by LibTorch " + written_by +
                      " in a layout this build's LibTorch " + compat::torch_version() +
                      " misreads (hint: resume it with a cifar10 built on LibTorch " + written_by +
                      ", or start from its weights with --load-model)");
    }
    optimizer.load(archive);
    for (const auto& [key, state] : optimizer.state()) {
      for (const auto& t : state_tensors(*state)) check_within_storage(t, path, "an optimiser state tensor");
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
  load_model_state(data, *out.model, path);
  out.model->eval();
  return out;
}

}  // namespace cifar
