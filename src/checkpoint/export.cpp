#include "checkpoint/export.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"

#ifndef CIFAR10_VERSION
#define CIFAR10_VERSION "0.0.0"
#endif

namespace cifar {
namespace fs = std::filesystem;

ExportedWeights exported_weights(const LoadedModel& loaded) {
  ExportedWeights out;
  for (const auto& item : loaded.model->named_parameters()) out.tensors.emplace(item.key(), item.value());
  for (const auto& item : loaded.model->named_buffers()) out.tensors.emplace(item.key(), item.value());
  // Values must be strings (the format says so): JSON text inside.
  out.metadata["format"] = "pt";  // what Hugging Face's loaders look for
  out.metadata["cifar10.spec"] = json_text(spec_to_json(loaded.spec));
  if (loaded.meta.contains("config")) out.metadata["cifar10.config"] = json_text(loaded.meta["config"]);
  out.metadata["cifar10.names"] = loaded.spec.type == "efficientnet" ? "torchvision" : "cifar10";
  out.metadata["cifar10.version"] = CIFAR10_VERSION;
  return out;
}

int run_export(const ExportOptions& options) {
  check_input(options.format == "safetensors",
              "invalid --format '" + printable(options.format, 40) + "': expected safetensors");
  std::error_code ec;
  check_input(!fs::is_directory(options.output, ec), "cannot write " + options.output + ": it is a folder",
              "name the file to write, such as " + (fs::path(options.output) / "model.safetensors").string());
  check_input(!fs::equivalent(options.output, options.load_model, ec),
              "cannot write " + options.output + ": it is the checkpoint being exported",
              "name another file, such as model.safetensors");
  // Before the checkpoint is read: a missing folder is named as such, and
  // one that takes no file (read-only, or /proc, where even root cannot
  // write) is found by making a file there, as access() passes root.
  const fs::path parent = fs::path(options.output).parent_path();
  const fs::path dir = parent.empty() ? fs::path(".") : parent;
  check_input(fs::is_directory(dir, ec),
              "cannot write " + options.output + ": folder " + dir.string() + " does not exist",
              "create it first, or name a file in an existing folder");
  std::string probe = (dir / (temp_name_prefix(".cifar10-export-") + "XXXXXX")).string();
  const int fd = ::mkstemp(probe.data());
  check_input(fd >= 0, "cannot write " + options.output + ": " + std::strerror(errno),
              "name a file in a folder you can write to");
  ::close(fd);
  ::unlink(probe.c_str());
  const LoadedModel loaded = load_model(options.load_model, torch::kCPU);
  const ExportedWeights weights = exported_weights(loaded);
  write_safetensors(options.output, weights.tensors, weights.metadata);
  std::cout << "Exported " << weights.tensors.size() << " tensors of " << loaded.spec.type << " ("
            << weights.metadata.at("cifar10.names") << " names) from " << options.load_model << " to " << options.output
            << " (" << fs::file_size(options.output, ec) << " bytes)\n";
  return 0;
}

}  // namespace cifar
