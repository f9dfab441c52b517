// Who started this process and where the group meets: torchrun, SLURM's
// srun, Open MPI's and MPICH's mpirun, or our own --nproc-per-node launcher
// all describe a rank in environment variables; this reads any of them into
// one DistEnvironment. It reads a map, not the process environment, so each
// launcher's variables can be tested without starting one.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace cifar {

using EnvMap = std::map<std::string, std::string>;

// This process's environment (environ) as a map.
EnvMap process_environment();

// Set by our local launcher in each worker, so a worker never launches again.
constexpr const char* kLocalLauncherVariable = "CIFAR10_LOCAL_LAUNCHER";
// Set by our local launcher: the file of the group's c10d FileStore.
constexpr const char* kStoreFileVariable = "CIFAR10_STORE_FILE";

struct DistEnvironment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;               // selects the GPU on this machine
  int local_world_size = 1;         // ranks on this machine, to share its cores
  std::string master_addr = "127.0.0.1";  // where rank 0 hosts the rendezvous store
  int master_port = 29500;
  std::string launcher = "none";    // torchrun | mpich | slurm | openmpi | none: whose variable gave the rank
  bool local_launcher = false;      // started by our own --nproc-per-node launcher
  // torchrun's agent already hosts the store at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 joins it as a client.
  bool store_hosted_by_launcher = false;
  int restart_count = 0;            // TORCHELASTIC_RESTART_COUNT: keeps a restarted group's keys apart
  // CIFAR10_STORE_FILE: meet through a FileStore at this path instead of a
  // TCPStore at MASTER_ADDR:MASTER_PORT (one machine only).
  std::string store_file;
};

// "rank 2 of 8", as errors name a rank.
std::string rank_text(const DistEnvironment& env);

// "localhost", "::1" or 127.x.x.x: a group meeting there is on one machine.
bool is_loopback_host(const std::string& host);

// Reads the launcher variables. When several launchers' variables are set
// (torchrun inside a SLURM job, say), each value is taken in timm's order:
//   rank:       RANK, PMI_RANK, SLURM_PROCID, OMPI_COMM_WORLD_RANK
//   world size: WORLD_SIZE, PMI_SIZE, SLURM_NTASKS, OMPI_COMM_WORLD_SIZE
//   local rank: LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID, OMPI_COMM_WORLD_LOCAL_RANK
//   local size: LOCAL_WORLD_SIZE, MPI_LOCALNRANKS, SLURM_TASKS_PER_NODE (this node's
//               entry), OMPI_COMM_WORLD_LOCAL_SIZE; 1 when none is set.
// Master address: MASTER_ADDR, else the first host of SLURM_JOB_NODELIST,
// else 127.0.0.1 when every rank is on this machine; a multi-machine group
// without either is an error. Port: MASTER_PORT, else 15000 + the last four
// digits of SLURM_JOB_ID, else 29500. Under torchrun, rank 0 hosts the
// store unless TORCHELASTIC_USE_AGENT_STORE=True says the agent does.
// Throws UserError naming the variable
// for a non-integer or out-of-range value.
DistEnvironment detect_environment(const EnvMap& env);

// SLURM's compressed host lists: "node[01-04,07],gpu5" -> node01, node02,
// node03, node04, node07, gpu5. Zero padding follows the range's first
// number; several bracket groups in one name multiply out. Throws UserError
// when malformed.
std::vector<std::string> expand_slurm_nodelist(const std::string& list);

// SLURM_TASKS_PER_NODE: "2(x3),1" -> 2, 2, 2, 1.
std::vector<int> expand_slurm_tasks_per_node(const std::string& list);

}  // namespace cifar
