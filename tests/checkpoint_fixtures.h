// Checkpoints built byte by byte, for the tests that hand hostile ones to
// the reader (tests/training) and to the binary (tests/e2e).
#pragma once
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "checkpoint/checkpoint.h"

namespace cifar::testing {

// The layout save_checkpoint writes, with any meta at all.
inline std::string checkpoint_bytes(const nlohmann::json& meta, const std::string& model_bytes,
                                    const std::string& optimizer_bytes = "") {
  auto tensor = [](const std::string& bytes) {
    auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
    if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    return t;
  };
  torch::serialize::OutputArchive root;
  root.write("meta", c10::IValue(meta.dump()));
  root.write("model", tensor(model_bytes));
  if (!optimizer_bytes.empty()) root.write("optimizer", tensor(optimizer_bytes));
  std::ostringstream out(std::ios::binary);
  root.save_to(out);
  return out.str();
}

// A real checkpoint with its meta changed by `edit`.
inline std::string with_meta(const std::string& checkpoint, const std::function<void(nlohmann::json&)>& edit) {
  auto data = parse_checkpoint(checkpoint, "fixture");
  edit(data.meta);
  return checkpoint_bytes(data.meta, data.model_bytes, data.optimizer_bytes);
}

// Copies every record of a LibTorch archive through `edit` (which may change
// a record's bytes) and appends `extra` records: how a hostile file would
// smuggle TorchScript into an otherwise valid checkpoint.
inline std::string repack_archive(const std::string& bytes,
                                  const std::function<void(const std::string&, std::string&)>& edit,
                                  const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  std::istringstream in(bytes);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version") continue;  // the writer adds its own
    auto [ptr, size] = reader.getRecord(name);
    std::string record(static_cast<const char*>(ptr.get()), size);
    edit(name, record);
    writer.writeRecord(name, record.data(), record.size());
  }
  for (const auto& [name, record] : extra) writer.writeRecord(name, record.data(), record.size());
  writer.writeEndOfFile();
  return out;
}

}  // namespace cifar::testing
