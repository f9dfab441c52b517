// The c10d context with real Gloo groups on loopback, one rank per thread of
// this process so each check costs milliseconds: collectives, rank 0's
// weights at start, bucketed gradient averaging against a by-hand average,
// buffer agreement with and without --sync-bn, and timeouts. Whole-binary
// runs with one process per rank are in data_parallel_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"
#include "distributed/c10d_compat.h"
#include "distributed/process_group.h"
#include "models/net.h"
#include "require_gloo.h"
#include "test_util.h"

namespace cifar {
namespace {

using Clock = std::chrono::steady_clock;
using testing::find_free_loopback_port;

DistEnvironment env_for(int rank, int world, int port) {
  DistEnvironment e;
  e.rank = rank;
  e.world_size = world;
  e.local_rank = rank;
  e.local_world_size = world;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  return e;
}

DistConfig gloo(int timeout_s, bool sync_bn = false) {
  DistConfig c;
  c.backend = "gloo";
  c.timeout = timeout_s;
  c.sync_bn = sync_bn;
  return c;
}

// Runs body(rank, env) on `world` threads and rethrows the first failure.
template <class F>
void run_ranks(int world, F body, int port = 0, bool agent_store = false) {
  if (port == 0) port = find_free_loopback_port();
  std::vector<std::exception_ptr> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto env = env_for(r, world, port);
        env.store_hosted_by_launcher = agent_store;
        body(r, env);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

class TinyNet : public Net {
 public:
  TinyNet() {
    a = register_module("a", torch::nn::Linear(4, 8));
    norm = register_module("norm", torch::nn::BatchNorm1d(8));
    b = register_module("b", torch::nn::Linear(8, 3));
  }
  torch::Tensor forward(torch::Tensor x) override { return b(torch::relu(norm(a(x)))); }
  std::string head_name() const override { return "b"; }
  torch::nn::Linear a{nullptr}, b{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};

// Whether a group is shut down at exit is asked of its class (NCCL's
// shutdown() became public during 2.x, with and without arguments). The
// trait is all this CPU build can check; the NCCL call itself runs on GPUs.
struct PublicShutdown {
  void shutdown() {}
};
struct ShutdownWithDefaultArgument {
  void shutdown(int /*reason*/ = 0) {}
};
class PrivateShutdown {
  void shutdown() {}
};
struct NoShutdown {};

TEST(ProcessGroup, ShutdownIsCalledOnlyWhereTheClassOffersOnePublicly) {
  EXPECT_TRUE(compat::detail::HasShutdown<PublicShutdown>::value);
  EXPECT_TRUE(compat::detail::HasShutdown<ShutdownWithDefaultArgument>::value);
  EXPECT_FALSE(compat::detail::HasShutdown<PrivateShutdown>::value);
  EXPECT_FALSE(compat::detail::HasShutdown<NoShutdown>::value);
}

TEST(ProcessGroup, WorldSizeOneWithAutoNeedsNoRendezvous) {
  DistConfig c;  // backend auto
  auto ctx = make_distributed_context(c, env_for(0, 1, 1), torch::kCPU);
  EXPECT_EQ(ctx->backend(), "none");
  EXPECT_EQ(ctx->world_size(), 1);
}

TEST(ProcessGroup, CollectivesOverThreeRanks) {
  SKIP_WITHOUT_GLOO();
  run_ranks(3, [](int r, const DistEnvironment& env) {
    auto ctx = make_distributed_context(gloo(30), env, torch::kCPU);
    EXPECT_EQ(ctx->backend(), "gloo");
    EXPECT_EQ(ctx->rank(), r);
    EXPECT_EQ(ctx->world_size(), 3);
    auto sum = torch::tensor({r + 1.0, 10.0 * r}, torch::kFloat64);
    ctx->all_reduce_sum(sum);
    EXPECT_EQ(sum[0].item<double>(), 6.0);
    EXPECT_EQ(sum[1].item<double>(), 30.0);
    auto max = torch::tensor({static_cast<double>(r), -static_cast<double>(r)}, torch::kFloat64);
    ctx->all_reduce_max(max);
    EXPECT_EQ(max[0].item<double>(), 2.0);
    EXPECT_EQ(max[1].item<double>(), 0.0);
    // A non-contiguous tensor is reduced in place all the same.
    auto wide = torch::full({2, 2}, static_cast<double>(r + 1), torch::kFloat64);
    auto column = wide.select(1, 0);
    ctx->all_reduce_sum(column);
    EXPECT_EQ(wide[1][0].item<double>(), 6.0);
    EXPECT_EQ(wide[1][1].item<double>(), r + 1.0);
    auto b = torch::full({4}, static_cast<float>(r));
    ctx->broadcast(b, 1);
    EXPECT_TRUE(torch::equal(b, torch::ones({4})));
    ctx->barrier();
  });
}

// Rank 0's weights and buffers everywhere after prepare_model; then, with
// buckets small enough that every parameter gets its own (64 bytes), two
// accumulation passes and one frozen parameter, each gradient equals the
// average of the ranks' local gradients computed by hand, and the buffers
// agree: rank 0's, or the mean over ranks with --sync-bn. Two steps, so
// that stream-ordered waits also settle the first step's collectives.
void check_gradients_and_buffers(bool sync_bn, HostWaits waits = HostWaits::kAuto) {
  constexpr int kWorld = 3;
  std::vector<std::vector<torch::Tensor>> initial(kWorld), local(kWorld), running_mean(kWorld);
  run_ranks(kWorld, [&](int r, const DistEnvironment& env) {
    auto net = std::make_shared<TinyNet>();
    {
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.uniform_(-1.0 - r, 1.0 + r);  // differ per rank
      net->norm->running_mean.fill_(r + 1.0);
    }
    // One weight stored column-major: its averaged gradient must keep those strides.
    net->b->weight.set_data(net->b->weight.detach().t().contiguous().t());
    ASSERT_FALSE(net->b->weight.is_contiguous());
    for (const auto& p : net->parameters()) initial[r].push_back(p.detach().clone());
    auto ctx = make_distributed_context(gloo(30, sync_bn), env, torch::kCPU, /*bucket_bytes=*/64, waits);
    ctx->barrier();  // every rank has recorded its initial weights
    ctx->prepare_model(*net);
    auto params = net->parameters();
    for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], initial[0][i])) << i;
    EXPECT_TRUE(torch::allclose(net->norm->running_mean, torch::ones({8})));

    net->a->bias.set_requires_grad(false);
    net->train();
    auto x = torch::linspace(-1, 1, 24).view({6, 4}) * (r + 1.0);
    auto halves = x.chunk(2);
    auto loss_of = [&](const torch::Tensor& h) { return net->forward(h).pow(2).mean() * 0.5; };
    // By hand: this rank's gradient of the two half-batches' losses.
    std::vector<torch::Tensor> trainable;
    for (auto& p : params) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    // The weights do not change between the steps: the same gradients.
    auto grads = torch::autograd::grad({loss_of(halves[0]) + loss_of(halves[1])}, trainable);
    for (auto& g : grads) local[r].push_back(g.detach().clone());

    for (size_t step = 0; step < 2; ++step) {
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      ctx->begin_backward(2);
      loss_of(halves[0]).backward();
      loss_of(halves[1]).backward();
      running_mean[r].push_back(net->norm->running_mean.clone());
      ctx->barrier();  // every rank has recorded its local gradients and buffers
      ctx->sync_gradients(params);
      ctx->sync_buffers();

      EXPECT_FALSE(net->a->bias.grad().defined());
      for (size_t i = 0; i < trainable.size(); ++i) {
        auto expected = torch::zeros_like(local[r][i]);
        for (int k = 0; k < kWorld; ++k) expected += local[k][i];
        expected /= kWorld;
        EXPECT_TRUE(torch::allclose(trainable[i].grad(), expected, 1e-5, 1e-6))
            << "parameter " << i << " on rank " << r << ", step " << step << ": "
            << (trainable[i].grad() - expected).abs().max().item<double>();
        // Laid out as its parameter (the foreach optimisers' fast path).
        EXPECT_EQ(trainable[i].grad().strides(), trainable[i].strides()) << "parameter " << i;
      }
      auto want = running_mean[0][step].clone();
      if (sync_bn) want = (running_mean[0][step] + running_mean[1][step] + running_mean[2][step]) / 3.0;
      EXPECT_TRUE(torch::allclose(net->norm->running_mean, want, 1e-6, 1e-7)) << "rank " << r << ", step " << step;
      // The ranks' own statistics differed (different inputs), so agreement is the context's doing.
      if (r == 1) EXPECT_FALSE(torch::allclose(running_mean[0][step], running_mean[1][step]));
      ctx->barrier();  // every rank has checked before the next step records
    }
  });
}

// Without prepare_model the gradients go unbucketed; a rank whose batch was
// empty has no gradients at all (they are dropped between steps) and must
// still take part, with zeros, or the other ranks wait on it.
TEST(ProcessGroup, UnbucketedRankWithoutGradientsTakesPartWithZeros) {
  SKIP_WITHOUT_GLOO();
  run_ranks(2, [&](int r, const DistEnvironment& env) {
    auto net = std::make_shared<TinyNet>();
    auto ctx = make_distributed_context(gloo(10), env, torch::kCPU);
    auto params = net->parameters();
    for (auto& p : params) p.mutable_grad() = r == 0 ? torch::ones_like(p) : torch::Tensor();
    ctx->sync_gradients(params);
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_TRUE(params[i].grad().defined()) << "parameter " << i << " on rank " << r;
      EXPECT_TRUE(torch::equal(params[i].grad(), torch::full_like(params[i], 0.5))) << "parameter " << i << " on rank " << r;
    }
  });
}

// After a step has filled the buckets: a rank with no samples in the next
// step (begin_backward(0), no backward pass) adds zeros, not the last
// step's gradient; and a backward pass run without begin_backward is
// averaged as it stands.
TEST(ProcessGroup, BucketsAreRefilledByARankWithoutSamplesAndWithoutBeginBackward) {
  SKIP_WITHOUT_GLOO();
  constexpr int kWorld = 2;
  std::vector<std::vector<torch::Tensor>> local(kWorld);
  run_ranks(kWorld, [&](int r, const DistEnvironment& env) {
    auto net = std::make_shared<TinyNet>();
    auto ctx = make_distributed_context(gloo(30), env, torch::kCPU, /*bucket_bytes=*/64);
    ctx->prepare_model(*net);
    net->train();
    auto params = net->parameters();
    auto loss_of = [&](double scale) { return net->forward(torch::linspace(-1, 1, 24).view({6, 4}) * scale).pow(2).mean(); };
    auto clear = [&] {
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
    };
    auto expect_grads = [&](const std::vector<torch::Tensor>& want, const char* step) {
      for (size_t i = 0; i < params.size(); ++i) {
        EXPECT_TRUE(torch::allclose(params[i].grad(), want[i], 1e-5, 1e-6))
            << step << ", parameter " << i << " on rank " << r << ": "
            << (params[i].grad() - want[i]).abs().max().item<double>();
      }
    };
    // Step 1: both ranks have samples; the buckets now hold its average.
    clear();
    ctx->begin_backward(1);
    loss_of(r + 1.0).backward();
    ctx->sync_gradients(params);

    // Step 2: only rank 0 has samples. (Barriers only between steps: a
    // rank's hooks launch its buckets' all-reduces during its backward.)
    if (r == 0) {
      for (auto& g : torch::autograd::grad({loss_of(3.0)}, params)) local[0].push_back(g.detach().clone());
    }
    ctx->barrier();  // rank 0's local gradients are recorded
    clear();
    if (r == 0) {
      ctx->begin_backward(1);
      loss_of(3.0).backward();
    } else {
      ctx->begin_backward(0);
    }
    std::vector<torch::Tensor> half;
    for (const auto& g : local[0]) half.push_back(g / kWorld);
    ctx->sync_gradients(params);
    expect_grads(half, "a rank without samples");
    ctx->barrier();

    // Step 3: backward passes without begin_backward.
    clear();
    local[r].clear();
    for (auto& g : torch::autograd::grad({loss_of(r + 5.0)}, params)) local[r].push_back(g.detach().clone());
    ctx->barrier();
    loss_of(r + 5.0).backward();
    std::vector<torch::Tensor> mean;
    for (size_t i = 0; i < params.size(); ++i) mean.push_back((local[0][i] + local[1][i]) / kWorld);
    ctx->sync_gradients(params);
    expect_grads(mean, "no begin_backward");
    ctx->barrier();
  });
}

TEST(ProcessGroup, BucketedGradientsAreTheRankAverage) {
  SKIP_WITHOUT_GLOO();
  check_gradients_and_buffers(false);
}
TEST(ProcessGroup, SyncBnAveragesRunningStatistics) {
  SKIP_WITHOUT_GLOO();
  check_gradients_and_buffers(true);
}
// NCCL's waits (stream-ordered gradients and buffers, polled host reads)
// driven over Gloo, whose works complete on host threads just the same.
TEST(ProcessGroup, StreamOrderedWaitsGiveTheSameGradientsAndBuffers) {
  SKIP_WITHOUT_GLOO();
  check_gradients_and_buffers(false, HostWaits::kStreamOrdered);
  check_gradients_and_buffers(true, HostWaits::kStreamOrdered);
}

// torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True):
// rank 0 must join it, not try to listen on the same port.
TEST(ProcessGroup, JoinsAStoreHostedByTorchrunsAgent) {
  SKIP_WITHOUT_GLOO();
  const int port = find_free_loopback_port();
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(port);
  options.isServer = true;
  options.waitWorkers = false;
  auto agent = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
  agent->set("torchelastic/agent-key", std::vector<uint8_t>{1});
  run_ranks(
      2,
      [](int r, const DistEnvironment& env) {
        auto ctx = make_distributed_context(gloo(30), env, torch::kCPU);
        auto t = torch::tensor({r + 1.0}, torch::kFloat64);
        ctx->all_reduce_sum(t);
        EXPECT_EQ(t.item<double>(), 3.0);
      },
      port, /*agent_store=*/true);
}

// With polled waits the backend's own timeout is 30 s longer: --dist-timeout
// is ours to enforce, and is.
void check_hung_peer(HostWaits waits) {
  run_ranks(2, [waits](int r, const DistEnvironment& env) {
    auto ctx = make_distributed_context(gloo(2), env, torch::kCPU, kGradientBucketBytes, waits);
    if (r == 1) {
      // A hung peer: in the group, never joining the collective.
      std::this_thread::sleep_for(std::chrono::milliseconds(3500));
      return;
    }
    auto t = torch::ones({1});
    const auto t0 = Clock::now();
    try {
      ctx->all_reduce_sum(t);
      ADD_FAILURE() << "the all-reduce returned without its peer";
    } catch (const UserError& e) {
      const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
      EXPECT_GE(waited, 1.5);
      EXPECT_LT(waited, 10.0);
      const std::string what = e.what();
      EXPECT_NE(what.find("rank 0 of 2"), std::string::npos) << what;
      EXPECT_NE(what.find("--dist-timeout 2 s"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_EQ(e.exit_code(), kExitRuntime);
    }
  });
}

TEST(ProcessGroup, HungPeerTimesOutWithAClearError) {
  SKIP_WITHOUT_GLOO();
  check_hung_peer(HostWaits::kAuto);
}
TEST(ProcessGroup, HungPeerTimesOutWithAClearErrorWhenWaitsArePolled) {
  SKIP_WITHOUT_GLOO();
  check_hung_peer(HostWaits::kStreamOrdered);
}

TEST(ProcessGroup, MissingRankFailsTheRendezvous) {
  SKIP_WITHOUT_GLOO();
  const int port = find_free_loopback_port();
  const auto t0 = Clock::now();
  try {
    make_distributed_context(gloo(2), env_for(0, 2, port), torch::kCPU);
    FAIL() << "a group of 2 formed with one rank";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot form the process group at 127.0.0.1:" + std::to_string(port)), std::string::npos)
        << what;
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);
  }
}

// Our launcher's workers meet through a FileStore, whose timeout reads
// only "Wait timeout": named as the missing answer it is.
TEST(ProcessGroup, MissingRankFailsAFileStoreRendezvousNamingTheTimeout) {
  SKIP_WITHOUT_GLOO();
  testing::TempDir dir("filestore");
  auto env = env_for(0, 2, 1);
  env.store_file = (dir / "store").string();
  try {
    make_distributed_context(gloo(2), env, torch::kCPU);
    FAIL() << "a group of 2 formed with one rank";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot form the process group at " + env.store_file +
                        ": no answer from every rank within --dist-timeout 2 s"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("check that all 2 workers were started"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace cifar
