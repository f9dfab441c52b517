// Launcher detection from fake environments: torchrun, srun, Open MPI,
// MPICH, their precedence when mixed, and SLURM's compressed host lists.
#include <gtest/gtest.h>

#include "common/error.h"
#include "config/config.h"
#include "distributed/environment.h"
#include "distributed/launcher.h"

namespace cifar {
namespace {

TEST(Environment, NothingSetIsOneProcess) {
  const auto d = detect_environment({{"HOME", "/root"}});
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_EQ(d.local_rank, 0);
  EXPECT_EQ(d.local_world_size, 1);
  EXPECT_EQ(d.launcher, "none");
  EXPECT_FALSE(d.local_launcher);
  EXPECT_EQ(d.store_file, "");
}

TEST(Environment, OurLauncherMeetsThroughAStoreFile) {
  const auto d = detect_environment({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                                     {kLocalLauncherVariable, "1"}, {kStoreFileVariable, "/tmp/r-x/store"}});
  EXPECT_TRUE(d.local_launcher);
  EXPECT_EQ(d.store_file, "/tmp/r-x/store");
}

TEST(Environment, Torchrun) {
  const auto d = detect_environment({{"RANK", "5"},
                                     {"WORLD_SIZE", "8"},
                                     {"LOCAL_RANK", "1"},
                                     {"LOCAL_WORLD_SIZE", "4"},
                                     {"MASTER_ADDR", "10.0.0.7"},
                                     {"MASTER_PORT", "29400"}});
  EXPECT_EQ(d.rank, 5);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 4);
  EXPECT_EQ(d.master_addr, "10.0.0.7");
  EXPECT_EQ(d.master_port, 29400);
  EXPECT_EQ(d.launcher, "torchrun");
  EXPECT_FALSE(d.store_hosted_by_launcher);
  EXPECT_EQ(d.restart_count, 0);
  // torchrun's agent hosting the store, after two restarts.
  const auto elastic = detect_environment({{"RANK", "0"},
                                           {"WORLD_SIZE", "2"},
                                           {"MASTER_ADDR", "n1"},
                                           {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                           {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(elastic.store_hosted_by_launcher);
  EXPECT_EQ(elastic.restart_count, 2);
}

// Ranks started by hand without LOCAL_WORLD_SIZE: with a loopback
// MASTER_ADDR every rank is on this machine and shares its cores (each took
// them all, 15 times slower); another address says nothing about it.
TEST(Environment, ALoopbackMasterMeansEveryRankIsLocal) {
  for (const char* host : {"127.0.0.1", "localhost", "::1"}) {
    const auto d = detect_environment({{"RANK", "1"}, {"WORLD_SIZE", "3"}, {"MASTER_ADDR", host}});
    EXPECT_EQ(d.local_world_size, 3) << host;
  }
  EXPECT_EQ(detect_environment({{"RANK", "1"}, {"WORLD_SIZE", "3"}, {"MASTER_ADDR", "10.0.0.7"}}).local_world_size, 1);
  const auto told = detect_environment(
      {{"RANK", "1"}, {"WORLD_SIZE", "3"}, {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}});
  EXPECT_EQ(told.local_world_size, 2);
}

TEST(Environment, SlurmTakesFirstHostAndJobPort) {
  const auto d = detect_environment({{"SLURM_PROCID", "6"},
                                     {"SLURM_NTASKS", "8"},
                                     {"SLURM_LOCALID", "2"},
                                     {"SLURM_NODEID", "1"},
                                     {"SLURM_TASKS_PER_NODE", "4(x2)"},
                                     {"SLURM_JOB_NODELIST", "gpu[07-08],cpu1"},
                                     {"SLURM_JOB_ID", "1234567"}});
  EXPECT_EQ(d.rank, 6);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 2);
  EXPECT_EQ(d.local_world_size, 4);
  EXPECT_EQ(d.master_addr, "gpu07");
  EXPECT_EQ(d.master_port, 15000 + 4567);
  EXPECT_EQ(d.launcher, "slurm");
}

TEST(Environment, SlurmMasterAddrAndPortOverride) {
  const auto d = detect_environment({{"SLURM_PROCID", "0"},
                                     {"SLURM_NTASKS", "2"},
                                     {"SLURM_LOCALID", "0"},
                                     {"SLURM_JOB_NODELIST", "node[01-02]"},
                                     {"SLURM_JOB_ID", "77"},
                                     {"MASTER_ADDR", "head"},
                                     {"MASTER_PORT", "23456"}});
  EXPECT_EQ(d.master_addr, "head");
  EXPECT_EQ(d.master_port, 23456);
  // A short job id is used whole: 15000 + 77.
  EXPECT_EQ(detect_environment({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_JOB_ID", "77"}}).master_port,
            15077);
}

TEST(Environment, SlurmUnevenTasksPerNode) {
  EXPECT_EQ(expand_slurm_tasks_per_node("2(x3),1"), (std::vector<int>{2, 2, 2, 1}));
  EXPECT_EQ(expand_slurm_tasks_per_node("4"), (std::vector<int>{4}));
  const auto d = detect_environment({{"SLURM_PROCID", "6"},
                                     {"SLURM_NTASKS", "7"},
                                     {"SLURM_NODEID", "3"},
                                     {"SLURM_TASKS_PER_NODE", "2(x3),1"},
                                     {"SLURM_JOB_NODELIST", "n[1-4]"}});
  EXPECT_EQ(d.local_world_size, 1);
  EXPECT_THROW(expand_slurm_tasks_per_node("2(x3"), UserError);
}

TEST(Environment, SlurmNodelistExpansion) {
  EXPECT_EQ(expand_slurm_nodelist("node[01-04,07],gpu5"),
            (std::vector<std::string>{"node01", "node02", "node03", "node04", "node07", "gpu5"}));
  EXPECT_EQ(expand_slurm_nodelist("a1"), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(expand_slurm_nodelist("n[8-10]"), (std::vector<std::string>{"n8", "n9", "n10"}));
  EXPECT_EQ(expand_slurm_nodelist("r[1-2]-n[01,03]"),
            (std::vector<std::string>{"r1-n01", "r1-n03", "r2-n01", "r2-n03"}));
  EXPECT_EQ(expand_slurm_nodelist("x[098-101]").front(), "x098");
  EXPECT_EQ(expand_slurm_nodelist("x[098-101]").back(), "x101");
  // The last two: a number past a long, and a range of a billion hosts
  // (once "stol" and std::bad_alloc).
  for (const char* bad : {"node[01-04", "node01]", "node[]", "node[04-01]", "node[a-b]", "a,,b",
                          "node[01-99999999999999999999]", "n[1-999999999]"}) {
    EXPECT_THROW(expand_slurm_nodelist(bad), UserError) << bad;
  }
}

TEST(Environment, OpenMpi) {
  const auto d = detect_environment({{"OMPI_COMM_WORLD_RANK", "3"},
                                     {"OMPI_COMM_WORLD_SIZE", "4"},
                                     {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                     {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                     {"MASTER_ADDR", "host0"}});
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.world_size, 4);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
  EXPECT_EQ(d.master_addr, "host0");
  EXPECT_EQ(d.master_port, 29500);
  EXPECT_EQ(d.launcher, "openmpi");
}

TEST(Environment, Mpich) {
  const auto d = detect_environment(
      {{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "2"}});
  EXPECT_EQ(d.rank, 1);
  EXPECT_EQ(d.world_size, 2);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
  // Every rank on this machine: the rendezvous stays on loopback.
  EXPECT_EQ(d.master_addr, "127.0.0.1");
  EXPECT_EQ(d.launcher, "mpich");
}

TEST(Environment, PrecedenceFollowsTimm) {
  // torchrun inside a SLURM allocation under mpirun: torchrun's variables
  // win, then MPICH's, then SLURM's, then Open MPI's, each value separately.
  const EnvMap all = {{"RANK", "1"},         {"WORLD_SIZE", "2"},       {"LOCAL_RANK", "1"},
                      {"PMI_RANK", "11"},    {"PMI_SIZE", "12"},        {"MPI_LOCALRANKID", "11"},
                      {"SLURM_PROCID", "21"}, {"SLURM_NTASKS", "22"},   {"SLURM_LOCALID", "21"},
                      {"OMPI_COMM_WORLD_RANK", "31"}, {"OMPI_COMM_WORLD_SIZE", "32"},
                      {"OMPI_COMM_WORLD_LOCAL_RANK", "31"}, {"MASTER_ADDR", "m"}};
  auto d = detect_environment(all);
  EXPECT_EQ(d.rank, 1);
  EXPECT_EQ(d.world_size, 2);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.launcher, "torchrun");

  EnvMap no_torchrun = all;
  for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK"}) no_torchrun.erase(k);
  d = detect_environment(no_torchrun);
  EXPECT_EQ(d.rank, 11);
  EXPECT_EQ(d.world_size, 12);
  EXPECT_EQ(d.local_rank, 11);
  EXPECT_EQ(d.launcher, "mpich");

  for (const char* k : {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"}) no_torchrun.erase(k);
  d = detect_environment(no_torchrun);
  EXPECT_EQ(d.rank, 21);
  EXPECT_EQ(d.world_size, 22);
  EXPECT_EQ(d.launcher, "slurm");

  for (const char* k : {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}) no_torchrun.erase(k);
  d = detect_environment(no_torchrun);
  EXPECT_EQ(d.rank, 31);
  EXPECT_EQ(d.world_size, 32);
  EXPECT_EQ(d.launcher, "openmpi");
}

TEST(Environment, RejectsWhatCannotWork) {
  EXPECT_THROW(detect_environment({{"RANK", "x"}, {"WORLD_SIZE", "2"}}), UserError);
  EXPECT_THROW(detect_environment({{"RANK", "1 "}, {"WORLD_SIZE", "2"}}), UserError);
  EXPECT_THROW(detect_environment({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), UserError);
  EXPECT_THROW(detect_environment({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), UserError);
  EXPECT_THROW(detect_environment({{"MASTER_PORT", "70000"}}), UserError);
  // Two machines and nowhere to meet.
  try {
    detect_environment({{"RANK", "0"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"}});
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_ADDR"), std::string::npos) << e.what();
  }
}

TEST(Launcher, WorkerCount) {
  Config c;
  c.run.device = "cpu";
  // mirrored on CPU is one process, as the original on a machine without GPUs.
  EXPECT_EQ(local_workers_to_start(c, {}), 0);
  c.dist.nproc_per_node = 3;
  EXPECT_EQ(local_workers_to_start(c, {}), 3);
  // A worker never launches again.
  EXPECT_EQ(local_workers_to_start(c, {{kLocalLauncherVariable, "1"}, {"RANK", "1"}, {"WORLD_SIZE", "3"}}), 0);
  // Under torchrun the group would nest.
  EXPECT_THROW(local_workers_to_start(c, {{"RANK", "0"}, {"WORLD_SIZE", "2"}}), UserError);
}

}  // namespace
}  // namespace cifar
