#include "training/checkpoint.h"

#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/torch_compat.h"
#include "models/registry.h"

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

torch::serialize::InputArchive archive_from(const std::string& bytes,
                                            const torch::Device& device = torch::kCPU) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), device);
  return archive;
}

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

CheckpointData read_checkpoint(const std::string& path) {
  const std::string bytes = read_file(path);
  CheckpointData data;
  try {
    auto root = archive_from(bytes);
    c10::IValue meta;
    root.read("meta", meta);
    data.meta = nlohmann::json::parse(meta.toStringRef());
    torch::Tensor t;
    root.read("model", t);
    data.model_bytes = tensor_to_bytes(t);
    torch::Tensor o;
    if (root.try_read("optimizer", o)) data.optimizer_bytes = tensor_to_bytes(o);
  } catch (const std::exception& e) {
    throw UserError("cannot read checkpoint " + path +
                    ": not a cifar10 checkpoint, or truncated (hint: pass a file written by cifar10, "
                    "e.g. checkpoints/best_model.pt)");
  }
  if (data.meta.value("format", "") != kCheckpointFormat) {
    throw UserError("cannot read checkpoint " + path + ": not a cifar10 checkpoint");
  }
  const int version = data.meta.value("version", 0);
  if (version > kCheckpointVersion) {
    throw UserError("checkpoint " + path + " has format version " + std::to_string(version) +
                    ", newer than this cifar10 reads (" + std::to_string(kCheckpointVersion) +
                    "); upgrade cifar10");
  }
  if (!data.meta.contains("spec")) throw UserError("checkpoint " + path + " has no model description");
  return data;
}

void load_model_state(const CheckpointData& data, Net& model, const std::string& path,
                      const torch::Device& device) {
  try {
    auto archive = archive_from(data.model_bytes, device);
    model.load(archive);
  } catch (const c10::Error& e) {
    throw UserError("checkpoint " + path + " does not match the model it describes: " +
                    first_line(e.what_without_backtrace()));
  }
}

void load_optimizer_state(const CheckpointData& data, torch::optim::Optimizer& optimizer,
                          const std::string& path, const torch::Device& device) {
  if (data.optimizer_bytes.empty()) {
    throw UserError("checkpoint " + path + " holds no optimiser state, so it cannot be resumed "
                    "(hint: use --load-model to start from its weights)");
  }
  try {
    auto archive = archive_from(data.optimizer_bytes, device);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw UserError("optimiser state in " + path + " does not match this run: " +
                    first_line(e.what_without_backtrace()));
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
