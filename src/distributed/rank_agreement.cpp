#include "distributed/rank_agreement.h"

#include <cstring>
#include <functional>

#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"
#include "config/cli.h"
#include "config/config.h"

namespace cifar {

void check_ranks_agree(const Config& config, const std::string& start, DistributedContext& dist) {
  if (dist.world_size() == 1) return;
  nlohmann::json settings = config_to_json(config);
  // Paths may differ between machines; whether a run starts from a file
  // may not (it decides the model and, with --resume, extra collectives),
  // nor what the file holds: another model, or a resume from another step
  // (the ranks would shard other batches), failed inside Gloo or hung.
  for (const char* flag : {"load-model", "resume", "pretrained-weights"}) {
    const bool given = !settings[flag].get<std::string>().empty();
    settings[flag] = given && flag != std::string("pretrained-weights") ? nlohmann::json(start) : nlohmann::json(given);
  }
  // Per machine, or read only by rank 0 or the launcher (fields.h, Scope).
  std::vector<std::string> local;
  for (const auto& item : settings.items()) {
    if (may_differ_between_ranks(item.key())) local.push_back(item.key());
  }
  for (const auto& key : local) settings.erase(key);
  // 52 bits: exact in the float64 tensors the context reduces.
  const auto hash = static_cast<double>(std::hash<std::string>{}(json_text(settings)) & ((uint64_t{1} << 52) - 1));
  auto t = torch::tensor({hash, -hash}, torch::kFloat64);
  dist.all_reduce_max(t);
  if (t[0].item<double>() == -t[1].item<double>()) return;
  // They differ: rank 0's settings go to every rank (a broadcast, as
  // bytes), which names the first flag where its own differ.
  const std::string text = json_text(settings);
  auto length = torch::tensor({static_cast<double>(text.size())}, torch::kFloat64);
  dist.broadcast(length, 0);
  auto bytes = torch::zeros({static_cast<int64_t>(length.item<double>())}, torch::kUInt8);
  if (dist.rank() == 0) std::memcpy(bytes.data_ptr(), text.data(), text.size());
  dist.broadcast(bytes, 0);
  std::string difference;
  try {
    const auto theirs = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes.data_ptr()),
                                                          static_cast<size_t>(bytes.numel())));
    for (const auto& [key, value] : settings.items()) {
      if (theirs.contains(key) && theirs[key] == value) continue;
      auto shown = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : json_text(v); };
      difference = ": rank 0 has --" + key + " " + printable(shown(theirs.value(key, nlohmann::json())), 60) +
                   ", rank " + std::to_string(dist.rank()) + " " + printable(shown(value), 60);
      break;
    }
  } catch (const nlohmann::json::exception&) {
  }
  throw UserError("the " + std::to_string(dist.world_size()) + " ranks were started with different settings" +
                  difference +
                  " (hint: start every rank with the same flags and config file; only paths, --threads, --device "
                  "and the launcher's flags may differ)");
}

}  // namespace cifar
