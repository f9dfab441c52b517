#include "distributed/environment.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "common/error.h"

extern char** environ;

namespace cifar {
namespace {

std::optional<std::string> lookup(const EnvMap& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// Strict: "2 " or "2x" is an error, not 2 (atoi would accept both).
int parse_int(const std::string& name, const std::string& text) {
  int value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    throw UserError("environment variable " + name + "='" + text + "' is not an integer",
                    kExitBadInput);
  }
  return value;
}

struct Found {
  int value;
  std::string variable;
};

// The first variable of `names` that is set, in that order.
std::optional<Found> first_int(const EnvMap& env, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto v = lookup(env, name)) return Found{parse_int(name, *v), name};
  }
  return std::nullopt;
}

std::string launcher_of(const std::string& variable) {
  if (variable == "RANK") return "torchrun";
  if (variable == "PMI_RANK") return "mpich";
  if (variable == "SLURM_PROCID") return "slurm";
  if (variable == "OMPI_COMM_WORLD_RANK") return "openmpi";
  return "none";
}

std::optional<int> slurm_local_world_size(const EnvMap& env) {
  auto tasks = lookup(env, "SLURM_TASKS_PER_NODE");
  if (!tasks) return std::nullopt;
  const auto per_node = expand_slurm_tasks_per_node(*tasks);
  const int node = lookup(env, "SLURM_NODEID") ? parse_int("SLURM_NODEID", *lookup(env, "SLURM_NODEID")) : 0;
  if (node < 0 || node >= static_cast<int>(per_node.size())) return std::nullopt;
  return per_node[node];
}

[[noreturn]] void malformed_nodelist(const std::string& list, const std::string& why) {
  throw UserError("cannot parse SLURM_JOB_NODELIST '" + list + "': " + why +
                  " (hint: set MASTER_ADDR to the first node's address)");
}

// One host pattern, possibly with several bracket groups: "rack[1-2]-n[01,03]".
void expand_host(const std::string& list, const std::string& pattern, std::vector<std::string>& out) {
  const auto open = pattern.find('[');
  if (open == std::string::npos) {
    if (pattern.find(']') != std::string::npos) malformed_nodelist(list, "unmatched ']'");
    out.push_back(pattern);
    return;
  }
  const auto close = pattern.find(']', open);
  if (close == std::string::npos) malformed_nodelist(list, "unmatched '['");
  const std::string prefix = pattern.substr(0, open);
  const std::string ranges = pattern.substr(open + 1, close - open - 1);
  const std::string rest = pattern.substr(close + 1);
  if (ranges.empty()) malformed_nodelist(list, "empty brackets");
  size_t start = 0;
  while (start <= ranges.size()) {
    const auto comma = std::min(ranges.find(',', start), ranges.size());
    const std::string range = ranges.substr(start, comma - start);
    const auto dash = range.find('-');
    const std::string lo = range.substr(0, dash);
    const std::string hi = dash == std::string::npos ? lo : range.substr(dash + 1);
    auto digits = [](const std::string& s) {
      return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(lo) || !digits(hi)) malformed_nodelist(list, "bad range '" + range + "'");
    if (lo.size() > 9 || hi.size() > 9) malformed_nodelist(list, "node number too long in '" + range + "'");
    const long a = std::stol(lo), b = std::stol(hi);
    if (b < a) malformed_nodelist(list, "descending range '" + range + "'");
    for (long i = a; i <= b; ++i) {
      // SLURM caps jobs far below this; a larger list is a corrupt variable.
      if (out.size() >= 100000) malformed_nodelist(list, "more than 100000 hosts");
      std::string number = std::to_string(i);
      if (number.size() < lo.size()) number.insert(0, lo.size() - number.size(), '0');
      expand_host(list, prefix + number + rest, out);
    }
    start = comma + 1;
  }
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host == "ip6-localhost" ||
         host.rfind("127.", 0) == 0;
}

EnvMap process_environment() {
  EnvMap env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::vector<std::string> expand_slurm_nodelist(const std::string& list) {
  std::vector<std::string> hosts;
  int depth = 0;
  size_t start = 0;
  // Commas inside brackets separate ranges, outside them hosts.
  for (size_t i = 0; i <= list.size(); ++i) {
    const char c = i < list.size() ? list[i] : ',';
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0) malformed_nodelist(list, "unmatched ']'");
    if (c == ',' && depth == 0) {
      const std::string item = list.substr(start, i - start);
      if (item.empty()) malformed_nodelist(list, "empty host name");
      expand_host(list, item, hosts);
      start = i + 1;
    }
  }
  if (depth != 0) malformed_nodelist(list, "unmatched '['");
  return hosts;
}

std::vector<int> expand_slurm_tasks_per_node(const std::string& list) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    const auto paren = item.find("(x");
    const int count = parse_int("SLURM_TASKS_PER_NODE", item.substr(0, paren));
    int repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') parse_int("SLURM_TASKS_PER_NODE", item);  // throws, naming the value
      repeat = parse_int("SLURM_TASKS_PER_NODE", item.substr(paren + 2, item.size() - paren - 3));
    }
    out.insert(out.end(), static_cast<size_t>(std::max(repeat, 0)), count);
    start = comma + 1;
  }
  return out;
}

DistEnvironment detect_environment(const EnvMap& env) {
  DistEnvironment d;
  const auto rank = first_int(env, {"RANK", "PMI_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"});
  const auto world = first_int(env, {"WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"});
  const auto local = first_int(env, {"LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"});
  if (rank) d.rank = rank->value;
  if (world) d.world_size = world->value;
  if (local) d.local_rank = local->value;
  d.launcher = rank ? launcher_of(rank->variable) : "none";
  d.local_launcher = lookup(env, kLocalLauncherVariable).has_value();
  d.store_file = lookup(env, kStoreFileVariable).value_or("");
  d.store_hosted_by_launcher = lookup(env, "TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  if (auto restarts = lookup(env, "TORCHELASTIC_RESTART_COUNT")) {
    d.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", *restarts);
  }

  if (auto lws = first_int(env, {"LOCAL_WORLD_SIZE", "MPI_LOCALNRANKS"})) {
    d.local_world_size = lws->value;
  } else if (auto slurm = slurm_local_world_size(env)) {
    d.local_world_size = *slurm;
  } else if (auto ompi = first_int(env, {"OMPI_COMM_WORLD_LOCAL_SIZE"})) {
    d.local_world_size = ompi->value;
  } else {
    d.local_world_size = 0;  // unknown: see MASTER_ADDR below
  }

  const std::string world_var = world ? world->variable : "WORLD_SIZE";
  const std::string rank_var = rank ? rank->variable : "RANK";
  if (d.world_size < 1) {
    throw UserError("environment variable " + world_var + "=" + std::to_string(d.world_size) + " must be at least 1");
  }
  if (d.rank < 0 || d.rank >= d.world_size) {
    throw UserError("environment variable " + rank_var + "=" + std::to_string(d.rank) + " is outside [0, " +
                    std::to_string(d.world_size) + ") for a world size of " + std::to_string(d.world_size) +
                    " (hint: a launcher's variables are left over in this shell?)");
  }
  // A launcher's local size cannot exceed the world; clamping keeps a bad
  // value from dividing the cores by zero.
  const bool local_size_known = d.local_world_size > 0;
  d.local_world_size = std::clamp(d.local_world_size, 1, d.world_size);
  if (d.local_rank < 0) {
    throw UserError("environment variable " + (local ? local->variable : std::string("LOCAL_RANK")) + "=" +
                    std::to_string(d.local_rank) + " must be 0 or more");
  }

  if (auto addr = lookup(env, "MASTER_ADDR")) {
    d.master_addr = *addr;
  } else if (auto nodes = lookup(env, "SLURM_JOB_NODELIST"); nodes && d.world_size > 1) {
    d.master_addr = expand_slurm_nodelist(*nodes).at(0);
  } else if (d.world_size > d.local_world_size) {
    throw UserError("a " + std::to_string(d.world_size) + "-rank group over several machines needs MASTER_ADDR (hint: export "
                    "MASTER_ADDR=<first node's address> and MASTER_PORT on every rank)");
  }
  // Ranks started by hand without LOCAL_WORLD_SIZE each took every core
  // (15 times slower on two cores): a loopback MASTER_ADDR says every rank
  // is on this machine.
  if (!local_size_known && is_loopback_host(d.master_addr)) d.local_world_size = d.world_size;
  if (auto port = lookup(env, "MASTER_PORT")) {
    d.master_port = parse_int("MASTER_PORT", *port);
  } else if (auto job = lookup(env, "SLURM_JOB_ID")) {
    // Jobs sharing a node get different ports; 15000..24999 stays below the
    // ephemeral range Linux hands out (32768 and up).
    d.master_port = 15000 + parse_int("SLURM_JOB_ID", job->size() > 4 ? job->substr(job->size() - 4) : *job);
  }
  if (d.master_port < 1 || d.master_port > 65535) {
    throw UserError("MASTER_PORT " + std::to_string(d.master_port) + " is not a TCP port (1-65535)");
  }
  return d;
}

std::string rank_text(const DistEnvironment& env) {
  return "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
}

}  // namespace cifar
