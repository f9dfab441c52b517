// The checkpoint reader on hostile bytes: what is not ours, is newer, is
// truncated, carries TorchScript, or describes a model no flag could build
// is refused with one line naming the file; the resume state is checked
// for type and range before it is used.
#include "checkpoint_fixtures.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/torch_compat.h"
#include "models/registry.h"
#include "test_util.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "checkpoint/checkpoint.h"
#include "training/optim.h"

namespace cifar {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

const std::vector<std::string> kClasses{"airplane", "automobile", "bird", "cat", "deer",
                                        "dog",      "frog",       "horse", "ship", "truck"};

ModelSpec cnn_spec() {
  ModelConfig mc;
  mc.model_type = "cnn";
  return make_spec(mc, kClasses, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
}

// A real CNN checkpoint, with optimiser state and a resumable meta.
struct Saved {
  TempDir tmp{"ckpt"};
  fs::path file = tmp / "model.pt";
  std::string bytes;
  Saved() {
    torch::manual_seed(3);
    auto model = build_model(cnn_spec());
    torch::optim::Adam adam(model->parameters());
    nlohmann::json meta = {{"epoch", 2}, {"step_in_epoch", 0}, {"global_step", 16}, {"learning_rate", 0.001},
                           {"callbacks", nlohmann::json::object()}};
    save_checkpoint(file.string(), *model, cnn_spec(), &adam, meta);
    bytes = read_file(file);
  }
};

const Saved& saved() {
  static const Saved s;
  return s;
}

// The UserError `parse` throws: its message, checked to be one line.
template <class F>
std::string refusal(F&& parse) {
  try {
    parse();
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_EQ(e.exit_code(), kExitBadInput) << what;
    return what;
  }
  ADD_FAILURE() << "expected a UserError";
  return "";
}

std::string meta_refusal(const std::function<void(nlohmann::json&)>& edit) {
  const std::string bytes = testing::with_meta(saved().bytes, edit);
  return refusal([&] { parse_checkpoint(bytes, "hostile.pt"); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Checkpoint, BytesParseAsTheFileReads) {
  const auto from_file = read_checkpoint(saved().file.string());
  const auto from_bytes = parse_checkpoint(saved().bytes, "in memory");
  EXPECT_EQ(from_file.meta, from_bytes.meta);
  EXPECT_EQ(from_file.model_bytes, from_bytes.model_bytes);
  EXPECT_EQ(from_file.optimizer_bytes, from_bytes.optimizer_bytes);
  auto model = build_model(spec_from_json(from_bytes.meta.at("spec")));
  EXPECT_NO_THROW(load_model_state(from_bytes, *model, "in memory"));
}

TEST(Checkpoint, EveryModelAndOptimiserWeBuildPassesTheChecksAndRoundTrips) {
  // The code, pickle and storage checks accept only what LibTorch's writer
  // makes for our models: each family and optimiser, with optimiser state.
  struct Case {
    std::string type;
    int depth, width;
    std::string optimizer;
  };
  for (const Case& c : {Case{"cnn", 0, 0, "sgd"}, Case{"resnet", 20, 0, "adamw"}, Case{"fast", 0, 16, "adam"},
                        Case{"efficientnet", 0, 0, "sgd"}}) {
    SCOPED_TRACE(c.type + "/" + c.optimizer);
    ModelConfig mc;
    mc.model_type = c.type;
    mc.depth = c.depth;
    mc.width = c.width;
    const auto spec = make_spec(mc, kClasses, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
    torch::manual_seed(5);
    auto model = build_model(spec);
    TrainConfig tc;
    tc.optimizer = c.optimizer;
    auto optimizer = make_optimizer(tc, *model);
    model->train();
    model->forward(torch::randn({2, 3, 32, 32})).sum().backward();
    optimizer->step();
    TempDir tmp("roundtrip");
    const auto file = (tmp / "m.pt").string();
    save_checkpoint(file, *model, spec, optimizer.get(), nlohmann::json::object());
    const auto data = read_checkpoint(file);
    auto again = build_model(spec_from_json(data.meta.at("spec")));
    load_model_state(data, *again, file);
    auto params = model->parameters(), loaded = again->parameters();
    ASSERT_EQ(params.size(), loaded.size());
    for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], loaded[i])) << i;
    auto optimizer_again = make_optimizer(tc, *again);
    EXPECT_NO_THROW(load_optimizer_state(data, *optimizer_again, file));
  }
}

// A model of `type` and an optimiser that has taken two steps on it, with a
// learning rate no default has.
struct Stepped {
  ModelSpec spec;
  NetPtr model;
  TrainConfig config;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  Stepped(const std::string& type, int width, const std::string& optimizer_name) {
    ModelConfig mc;
    mc.model_type = type;
    mc.width = width;
    spec = make_spec(mc, kClasses, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
    torch::manual_seed(11);
    model = build_model(spec);
    config.optimizer = optimizer_name;
    config.nesterov = optimizer_name == "sgd";
    optimizer = make_optimizer(config, *model);
    model->train();
    for (int i = 0; i < 2; ++i) {
      clear_gradients(*optimizer);
      model->forward(torch::randn({4, 3, 32, 32})).logsumexp(1).sum().backward();
      optimizer->step();
    }
    set_learning_rate(*optimizer, 0.0123);
  }
};

// Each parameter's state in `a` and `b`, compared field by field.
void expect_same_state(torch::optim::Optimizer& a, torch::optim::Optimizer& b) {
  ASSERT_EQ(a.param_groups().size(), b.param_groups().size());
  size_t compared = 0;
  for (size_t g = 0; g < a.param_groups().size(); ++g) {
    const auto& pa = a.param_groups()[g].params();
    const auto& pb = b.param_groups()[g].params();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      auto sa = a.state().find(compat::optimizer_state_key(pa[i]));
      auto sb = b.state().find(compat::optimizer_state_key(pb[i]));
      ASSERT_EQ(sa == a.state().end(), sb == b.state().end()) << g << "/" << i;
      if (sa == a.state().end()) continue;
      ++compared;
      if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(sa->second.get())) {
        auto& other = dynamic_cast<torch::optim::AdamParamState&>(*sb->second);
        EXPECT_EQ(adam->step(), other.step());
        EXPECT_TRUE(torch::equal(adam->exp_avg(), other.exp_avg()));
        EXPECT_TRUE(torch::equal(adam->exp_avg_sq(), other.exp_avg_sq()));
      } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(sa->second.get())) {
        auto& other = dynamic_cast<torch::optim::AdamWParamState&>(*sb->second);
        EXPECT_EQ(adamw->step(), other.step());
        EXPECT_TRUE(torch::equal(adamw->exp_avg(), other.exp_avg()));
        EXPECT_TRUE(torch::equal(adamw->exp_avg_sq(), other.exp_avg_sq()));
      } else {
        auto& sgd = dynamic_cast<torch::optim::SGDParamState&>(*sa->second);
        auto& other = dynamic_cast<torch::optim::SGDParamState&>(*sb->second);
        EXPECT_TRUE(torch::equal(sgd.momentum_buffer(), other.momentum_buffer()));
      }
    }
  }
  EXPECT_GT(compared, 0u);
  EXPECT_EQ(compared, a.state().size());
}

TEST(Checkpoint, OptimiserStateIsKeptByPlaceAndComesBackExactly) {
  // torch::optim's own layout keys the state by address, which 1.x writes
  // as hex text and 2.x reads as a decimal number; ours names places only.
  for (const auto& [type, optimizer] : {std::pair<std::string, std::string>{"cnn", "adam"}, {"resnet", "adamw"},
                                        {"fast", "sgd"}}) {
    SCOPED_TRACE(type + "/" + optimizer);
    Stepped before(type, type == "fast" ? 16 : 0, optimizer);
    TempDir tmp("by_place");
    const auto file = (tmp / "m.pt").string();
    save_checkpoint(file, *before.model, before.spec, before.optimizer.get(), nlohmann::json::object());
    const auto data = read_checkpoint(file);
    EXPECT_EQ(data.meta.at("version"), kCheckpointVersion);
    std::istringstream in(data.optimizer_bytes);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    auto keys = archive.keys();
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"group_0", "group_1", "groups", "kind"}));

    auto model = build_model(before.spec);
    load_model_state(data, *model, file);
    auto after = make_optimizer(before.config, *model);
    load_optimizer_state(data, *after, file);
    expect_same_state(*before.optimizer, *after);
    // The groups' options too (torch::optim's own layout did not restore them).
    for (const auto& group : after->param_groups()) EXPECT_EQ(group.options().get_lr(), 0.0123);
  }
}

TEST(Checkpoint, VersionOneOptimiserStateStillResumes) {
  // Checkpoints written before the state was kept by place hold
  // torch::optim's own archive; this LibTorch wrote it, so it reads it.
  Stepped before("cnn", 0, "adam");
  torch::serialize::OutputArchive archive;
  before.optimizer->save(archive);
  std::ostringstream torch_layout(std::ios::binary);
  archive.save_to(torch_layout);
  TempDir tmp("v1");
  const auto file = (tmp / "m.pt").string();
  save_checkpoint(file, *before.model, before.spec, nullptr, nlohmann::json::object());
  auto data = read_checkpoint(file);
  data.meta["version"] = 1;
  const auto v1 = testing::checkpoint_bytes(data.meta, data.model_bytes, torch_layout.str());
  const auto parsed = parse_checkpoint(v1, "v1.pt");
  auto after = make_optimizer(before.config, *before.model);
  load_optimizer_state(parsed, *after, "v1.pt");
  expect_same_state(*before.optimizer, *after);
}

TEST(Checkpoint, OptimiserStateOfAnotherModelIsRefusedAndChangesNothing) {
  Stepped narrow("fast", 16, "sgd");
  TempDir tmp("other");
  const auto file = (tmp / "m.pt").string();
  save_checkpoint(file, *narrow.model, narrow.spec, narrow.optimizer.get(), nlohmann::json::object());
  const auto data = read_checkpoint(file);

  Stepped wide("fast", 24, "sgd");  // as many parameters, other shapes
  const auto lr_before = get_learning_rate(*wide.optimizer);
  EXPECT_TRUE(contains(refusal([&] { load_optimizer_state(data, *wide.optimizer, "m.pt"); }),
                       "optimiser state in m.pt does not match this run: parameter "));
  EXPECT_EQ(get_learning_rate(*wide.optimizer), lr_before);
  EXPECT_FALSE(wide.optimizer->state().empty());

  Stepped cnn("cnn", 0, "sgd");  // another parameter count
  EXPECT_TRUE(contains(refusal([&] { load_optimizer_state(data, *cnn.optimizer, "m.pt"); }),
                       "optimiser state in m.pt has "));

  Stepped adam("fast", 16, "adam");  // the model that wrote it, another optimiser
  EXPECT_EQ(refusal([&] { load_optimizer_state(data, *adam.optimizer, "m.pt"); }),
            "optimiser state in m.pt is sgd's, this run's optimiser is adam (hint: resume with --optimizer sgd)");
}

TEST(Checkpoint, HostileOptimiserRecordsAreRefusedInOneLine) {
  Stepped run("fast", 16, "sgd");
  TempDir tmp("hostile_optim");
  const auto file = (tmp / "m.pt").string();
  save_checkpoint(file, *run.model, run.spec, nullptr, nlohmann::json::object());
  const auto good = read_checkpoint(file);
  const auto state_before = run.optimizer->state().size();
  // An optimiser record built by `fill`, in an otherwise good checkpoint.
  auto refused = [&](const std::function<void(torch::serialize::OutputArchive&)>& fill) {
    torch::serialize::OutputArchive archive;
    fill(archive);
    std::ostringstream out(std::ios::binary);
    archive.save_to(out);
    const auto data = parse_checkpoint(testing::checkpoint_bytes(good.meta, good.model_bytes, out.str()), "h.pt");
    const auto why = refusal([&] { load_optimizer_state(data, *run.optimizer, "h.pt"); });
    EXPECT_TRUE(contains(why, "h.pt")) << why;
    EXPECT_EQ(run.optimizer->state().size(), state_before);
    return why;
  };
  const auto groups_of = [](int64_t n, const std::function<void(torch::serialize::OutputArchive&)>& group) {
    return [n, group](torch::serialize::OutputArchive& a) {
      a.write("kind", c10::IValue(std::string("sgd")));
      a.write("groups", c10::IValue(n));
      for (int64_t g = 0; g < std::min<int64_t>(n, 2); ++g) {  // as many as fit a claim
        torch::serialize::OutputArchive one;
        group(one);
        a.write("group_" + std::to_string(g), one);
      }
    };
  };
  EXPECT_TRUE(contains(refused([](auto& a) { a.write("kind", c10::IValue(int64_t{42})); }), "bad optimiser kind"));
  EXPECT_TRUE(contains(refused([](auto& a) { a.write("groups", c10::IValue(int64_t{2})); }), "h.pt"));
  EXPECT_TRUE(contains(refused(groups_of(-1, [](auto&) {})), "bad 'groups' count"));
  EXPECT_TRUE(contains(refused(groups_of(INT64_C(1) << 40, [](auto&) {})), "bad 'groups' count"));
  EXPECT_TRUE(contains(refused(groups_of(2, [](auto& g) { g.write("params", c10::IValue(std::string("x"))); })),
                       "bad 'params' count"));
  // A momentum buffer that is not a tensor, in the group's first place.
  const auto real_sizes = [&](size_t g) { return static_cast<int64_t>(run.optimizer->param_groups()[g].params().size()); };
  int64_t group_index = 0;
  EXPECT_TRUE(contains(refused(groups_of(2, [&](auto& g) {
                         torch::serialize::OutputArchive options, state;
                         torch::optim::SGDOptions(0.1).serialize(options);
                         g.write("options", options);
                         g.write("params", c10::IValue(real_sizes(group_index++)));
                         state.write("momentum_buffer", c10::IValue(std::string("not a tensor")));
                         g.write("param_0", state);
                       })),
                       "optimiser state in h.pt does not match this run"));
}

TEST(Checkpoint, MetaOfTheWrongShapeIsRefusedInPlainWords) {
  // Each of these once escaped as a json type_error (exit 1, jargon).
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m = nlohmann::json::array({1, 2}); }),
                       "cannot read checkpoint hostile.pt: not a cifar10 checkpoint"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["format"] = 42; }), "not a cifar10 checkpoint"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["version"] = "1"; }), "no valid format version"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["version"] = 1e300; }), "no valid format version"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["version"] = 0; }), "no valid format version"));
  EXPECT_EQ(meta_refusal([](auto& m) { m["version"] = 99; }),
            "checkpoint hostile.pt has format version 99, newer than this cifar10 reads (" +
                std::to_string(kCheckpointVersion) + "); upgrade cifar10");
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m.erase("spec"); }), "has no model description"));
}

TEST(Checkpoint, ModelDescriptionsNoFlagCouldBuildAreRefusedBeforeBuilding) {
  // Without these bounds, build_model() would try to allocate terabytes
  // (width 10^9) or index past three channel statistics.
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["type"] = "vgg"; }), "unknown model type 'vgg'"));
  // Quoted printably: the message quoted it raw (found by fuzz/checkpoint_fuzz).
  EXPECT_TRUE(
      contains(meta_refusal([](auto& m) { m["spec"]["type"] = "vg\x1b[2Jg"; }), "unknown model type 'vg?[2Jg'"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["width"] = 1000000000; }), "bad width: 1000000000"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["width"] = 5000; }), "width 5000 (0..1024)"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["width"] = 1e300; }), "bad width"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["input_size"] = 100000; }), "input size 100000"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["class_names"] = nlohmann::json::array(); }),
                       "0 class names"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["mean"] = {0.5, 0.5}; }), "3 channel means"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["std"] = {0.5, 0.0, 0.5}; }), "not positive"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) { m["spec"]["dropout"] = 1.5; }), "dropout"));
  EXPECT_TRUE(contains(meta_refusal([](auto& m) {
                         m["spec"]["type"] = "resnet";
                         m["spec"]["depth"] = 7;
                       }),
                       "unsupported ResNet depth 7"));
}

TEST(Checkpoint, TruncatedOrForeignFilesAreRefused) {
  const auto& bytes = saved().bytes;
  for (size_t cut : {size_t{0}, size_t{100}, bytes.size() / 2, bytes.size() - 10}) {
    EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(bytes.substr(0, cut), "cut.pt"); }),
                         "cannot read checkpoint cut.pt: not a cifar10 checkpoint, or truncated"))
        << cut;
  }
  // A LibTorch archive that is not a checkpoint: no meta record.
  torch::serialize::OutputArchive other;
  other.write("weights", torch::ones({2}));
  std::ostringstream out;
  other.save_to(out);
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(out.str(), "other.pt"); }), "not a cifar10 checkpoint"));
}

// Bytes damaged on disk inside a tensor record: LibTorch's zip reader does
// not check CRCs, and the weights loaded and predicted with full confidence.
TEST(Checkpoint, ARecordWhoseBytesChangedIsRefusedByItsCrc) {
  std::string bytes = saved().bytes;
  for (size_t i = 0; i < 64; ++i) bytes[bytes.size() / 2 + i] ^= 0x5a;
  const std::string message = refusal([&] { parse_checkpoint(bytes, "flipped.pt"); });
  EXPECT_TRUE(contains(message, "checkpoint flipped.pt is corrupt: record ")) << message;
  EXPECT_TRUE(contains(message, "CRC")) << message;
  EXPECT_NO_THROW(parse_checkpoint(saved().bytes, "intact.pt"));
}

TEST(Checkpoint, ArchivesCarryingTorchScriptAreRefusedBeforeLibTorchLoadsThem) {
  // torch::jit::load compiles code/*.py and runs a __setstate__ while
  // unpickling; our archives hold attribute declarations only.
  const std::string with_method = testing::repack_archive(saved().bytes, [](const std::string& name, std::string& data) {
    if (name == "code/__torch__.py") data += "  def __setstate__(self, state: str) -> None:\n    pass\n";
  });
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(with_method, "evil.pt"); }),
                       "checkpoint evil.pt carries TorchScript code (code/__torch__.py, line 7 is not an attribute "
                       "declaration)"));
  const std::string custom_class = testing::repack_archive(saved().bytes, [](const std::string& name, std::string& data) {
    if (name == "data.pkl") data.insert(data.size() - 1, "c__torch__.torch.classes.quantized\nLinearPackedParamsBase\n0");
  });
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(custom_class, "evil.pt"); }),
                       "checkpoint evil.pt names a TorchScript class (data.pkl)"));
  const std::string legacy =
      testing::repack_archive(saved().bytes, [](const std::string&, std::string&) {}, {{"model.json", "{}"}});
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(legacy, "old.pt"); }), "legacy TorchScript archive"));
  // The same check guards the nested model archive.
  auto data = parse_checkpoint(saved().bytes, "ok.pt");
  data.model_bytes = testing::repack_archive(data.model_bytes, [](const std::string& name, std::string& bytes) {
    if (name == "code/__torch__.py") bytes += "  def forward(self):\n    pass\n";
  });
  auto model = build_model(cnn_spec());
  EXPECT_TRUE(contains(refusal([&] { load_model_state(data, *model, "nested.pt"); }), "carries TorchScript code"));
  // A comment is not a declaration either: only what the writer makes passes.
  EXPECT_TRUE(contains(refusal([&] {
                         parse_checkpoint(testing::repack_archive(saved().bytes,
                                                                  [](const std::string& name, std::string& bytes) {
                                                                    if (name == "code/__torch__.py") bytes += "# hello\n";
                                                                  }),
                                          "comment.pt");
                       }),
                       "line 7 is not an attribute declaration"));
}

TEST(Checkpoint, ADamagedModelArchiveIsOneLineNotLibTorchsReport) {
  // Found by fuzz/checkpoint_fuzz: torch::jit::load reports TorchScript it
  // cannot use with a multi-line ErrorReport, which is no c10::Error and
  // reached main() whole. Code lines are now held to the declarations our
  // writer makes, but a well-formed line can still name a class the
  // archive lacks.
  auto data = parse_checkpoint(saved().bytes, "ok.pt");
  data.model_bytes = testing::repack_archive(data.model_bytes, [](const std::string& name, std::string& bytes) {
    if (name == "code/__torch__.py") {
      bytes = "class Module(Module):\n  __parameters__ = []\n  __buffers__ = []\n"
              "  features : __torch__.___torch_mangle_999.Module\n";
    }
  });
  auto model = build_model(cnn_spec());
  EXPECT_TRUE(contains(refusal([&] { load_model_state(data, *model, "damaged.pt"); }), "checkpoint damaged.pt "));
  // Source LibTorch's parser would quote raw (an escape sequence) never
  // gets to it.
  data = parse_checkpoint(saved().bytes, "ok.pt");
  data.model_bytes = testing::repack_archive(data.model_bytes, [](const std::string& name, std::string& bytes) {
    if (name == "code/__torch__.py") bytes = "class Module(Module):\n  \x1b[31m : Tensor\n";
  });
  EXPECT_EQ(refusal([&] { load_model_state(data, *model, "damaged.pt"); }),
            "checkpoint damaged.pt carries TorchScript code (code/__torch__.py, line 2 is not an attribute "
            "declaration), which cifar10 never writes; refusing to load it, as LibTorch would run it");
  data = parse_checkpoint(saved().bytes, "ok.pt");
  data.optimizer_bytes = testing::repack_archive(data.optimizer_bytes, [](const std::string& name, std::string& bytes) {
    if (name == "code/__torch__.py") bytes = "class Module(Module):\n  state : __torch__.x(";
  });
  torch::optim::Adam adam(model->parameters());
  EXPECT_TRUE(contains(refusal([&] { load_optimizer_state(data, adam, "damaged.pt"); }),
                       "checkpoint damaged.pt carries TorchScript code (code/__torch__.py, line 2 "));
}

TEST(Checkpoint, CodeThatCrashedLibTorchsParserIsRefusedBeforeIt) {
  // Found by fuzz/checkpoint_fuzz: "__parametrrs__ = [...]" is a class
  // constant to TorchScript, and ScriptTypeParser::parseClassConstant
  // crashed on it (SIGSEGV inside libtorch_cpu).
  const std::string typo = testing::repack_archive(saved().bytes, [](const std::string& name, std::string& data) {
    if (name == "code/__torch__.py") {
      const auto at = data.find("__parameters__");
      ASSERT_NE(at, std::string::npos);
      data.replace(at, 14, "__parametrrs__");
    }
  });
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(typo, "typo.pt"); }),
                       "carries TorchScript code (code/__torch__.py, line 2 is not an attribute declaration)"));
}

TEST(Checkpoint, PickleLengthsPastTheirRecordAreRefusedBeforeLibTorchAllocates) {
  // Found by fuzz/checkpoint_fuzz: LibTorch's unpickler reserved the 4 GB a
  // BINUNICODE length field in a 106-byte debug_pkl claimed.
  auto with_record = [&](const std::string& record, const std::string& pickle) {
    return testing::repack_archive(saved().bytes, [&](const std::string& name, std::string& data) {
      if (name == record) data = pickle;
    });
  };
  const std::string huge = with_record("code/__torch__.py.debug_pkl", std::string("\x80\x02X\x01\x00\x00\xFE", 7) + "abc.");
  EXPECT_EQ(refusal([&] { parse_checkpoint(huge, "oom.pt"); }),
            "checkpoint oom.pt is corrupt: its record code/__torch__.py.debug_pkl claims a 4261412865-byte value "
            "with 4 bytes left");
  const std::string huge8 = with_record("data.pkl", std::string("\x80\x02\x8e\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF.", 12));
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(huge8, "oom.pt"); }), "its record data.pkl claims a 18446744073709551615-byte"));
  // And a memo index that made it reserve 28 GB: LONG_BINPUT 0x34b4b4b6.
  const std::string memo = with_record("constants.pkl", std::string("\x80\x02)r\xb6\xb4\xb4\x34.", 9));
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(memo, "oom.pt"); }),
                       "its record constants.pkl has a memo index 884257974 past its size"));
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(with_record("constants.pkl", "\x80\x02\xFF."), "x.pt"); }),
                       "its record constants.pkl holds an unknown opcode 0xff"));
  EXPECT_TRUE(contains(refusal([&] { parse_checkpoint(with_record("constants.pkl", "\x80\x02)"), "x.pt"); }),
                       "its record constants.pkl has no STOP"));
}

TEST(Checkpoint, TensorsClaimingMoreThanTheirStorageAreRefused) {
  // Found by fuzz/checkpoint_fuzz: LibTorch sizes a storage by the count
  // its pickle declares and fills it from the record the key names, never
  // comparing the two. Pointing the model tensor (5 MB, storage '0') at the
  // optimizer's small record ('1') made reading it run past a heap buffer.
  const std::string pickle_key_0("X\x01\x00\x00\x00" "0q", 7);
  const std::string swapped = testing::repack_archive(saved().bytes, [&](const std::string& name, std::string& data) {
    if (name != "data.pkl") return;
    const auto at = data.find(pickle_key_0);
    ASSERT_NE(at, std::string::npos);
    data[at + 5] = '1';
  });
  const std::string message = refusal([&] { parse_checkpoint(swapped, "swapped.pt"); });
  EXPECT_TRUE(contains(message, "checkpoint swapped.pt is corrupt: its record data.pkl declares storage data/1 of "))
      << message;
  EXPECT_TRUE(contains(message, " x 1 bytes, but the record holds ")) << message;
}

TEST(Checkpoint, WeightsLoadOntoTheDeviceTheModelIsOn) {
  // A CUDA model restoring its best weights from a file (EarlyStopping)
  // must keep them on its GPU, or its evaluation fails on mixed devices.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto model = build_model(cnn_spec());
  model->to(torch::kCUDA);
  const auto first = model->parameters().front();
  load_model_state(parse_checkpoint(saved().bytes, "model.pt"), *model, "model.pt");
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.is_cuda());
  for (const auto& b : model->buffers()) EXPECT_TRUE(b.is_cuda());
  EXPECT_TRUE(model->parameters().front().is_same(first)) << "the optimiser's tensors are the model's";
  model->eval();
  EXPECT_EQ(model->forward(torch::zeros({2, 3, 32, 32}, torch::kCUDA)).size(0), 2);
}

TEST(Checkpoint, ModelTensorsOfAnotherShapeOrTypeAreRefused) {
  // Module::load() set_()s a parameter to whatever tensor the file holds.
  auto data = parse_checkpoint(saved().bytes, "ok.pt");
  ModelConfig mc;
  mc.model_type = "cnn";
  auto three = build_model(make_spec(mc, {"a", "b", "c"}, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}));
  EXPECT_TRUE(contains(refusal([&] { load_model_state(data, *three, "ten.pt"); }),
                       "checkpoint ten.pt does not match the model it describes: "))
      << "a 10-class head loaded into a 3-class model";
  // A float32 file into a float64 model: LibTorch 1.13's set_() keeps the
  // parameter's dtype on the 4-byte storage (every forward pass would read
  // twice the storage's size), 2.x refuses in its own words; both get ours.
  auto doubled = build_model(cnn_spec());
  doubled->to(torch::kFloat64);
  const std::string f32 = refusal([&] { load_model_state(data, *doubled, "f32.pt"); });
  EXPECT_EQ(f32, "checkpoint f32.pt does not match the model it describes: 'features.0.weight' is "
                 "Float[32, 3, 3, 3] in the file, Double[32, 3, 3, 3] in the model");
}

TEST(Checkpoint, ModelTensorsTheDescribedModelLacksAreRefused) {
  // A ResNet-32's weights under a description edited to ResNet-20: every
  // tensor ResNet-20 has fits, and Module::load() skips the other blocks.
  ModelConfig mc;
  mc.model_type = "resnet";
  mc.depth = 32;
  const ModelSpec deep = make_spec(mc, kClasses, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
  mc.depth = 20;
  const ModelSpec shallow = make_spec(mc, kClasses, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25});
  TempDir tmp("extra");
  const fs::path file = tmp / "deep.pt";
  save_checkpoint(file.string(), *build_model(deep), deep, nullptr, nlohmann::json::object());
  auto data = read_checkpoint(file.string());
  auto target = build_model(shallow);
  std::vector<torch::Tensor> before;
  for (const auto& p : target->parameters()) before.push_back(p.detach().clone());
  const std::string message = refusal([&] { load_model_state(data, *target, "edited.pt"); });
  EXPECT_TRUE(contains(message, "checkpoint edited.pt does not match the model it describes: it holds 72 tensors "
                                "the model lacks, such as 'layer1.3."))
      << message;
  // Refused before Module::load(): the model keeps its own weights (a
  // failed restore of the best weights leaves the last epoch's).
  const auto after = target->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i])) << i;
  // The model it was written for loads.
  auto same = build_model(deep);
  load_model_state(data, *same, "deep.pt");
}

TEST(Checkpoint, ResumePointIsCheckedForTypeAndRange) {
  const auto meta = read_checkpoint(saved().file.string()).meta;
  const ResumePoint p = resume_point(meta, "ok.pt");
  EXPECT_EQ(p.epoch, 2);
  EXPECT_EQ(p.step_in_epoch, 0);
  EXPECT_EQ(p.global_step, 16);
  EXPECT_DOUBLE_EQ(p.learning_rate, 0.001);
  EXPECT_FALSE(p.partial);
  auto refused = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto m = meta;
    edit(m);
    return refusal([&] { resume_point(m, "bad.pt"); });
  };
  // 1e300 cast to int is undefined behaviour; -1 and 2.5 are not epochs.
  EXPECT_TRUE(contains(refused([](auto& m) { m["epoch"] = 1e300; }), "lacks a valid 'epoch'"));
  EXPECT_TRUE(contains(refused([](auto& m) { m["epoch"] = -1; }), "lacks a valid 'epoch'"));
  EXPECT_TRUE(contains(refused([](auto& m) { m["epoch"] = 2.5; }), "lacks a valid 'epoch'"));
  EXPECT_TRUE(contains(refused([](auto& m) { m["global_step"] = "16"; }), "'global_step'"));
  EXPECT_TRUE(contains(refused([](auto& m) { m.erase("learning_rate"); }), "'learning_rate'"));
  EXPECT_TRUE(contains(refused([](auto& m) { m["partial"] = {1, 2, 3}; }), "partial-epoch sums"));
  EXPECT_TRUE(contains(refused([](auto& m) { m["callbacks"] = 5; }), "callbacks' state"));
  auto with_partial = meta;
  with_partial["partial"] = {1.5, 2, 3, 4};
  EXPECT_EQ(*resume_point(with_partial, "ok.pt").partial, (std::vector<double>{1.5, 2, 3, 4}));
}

TEST(Checkpoint, CallbackCountersOutOfIntRangeAreRefused) {
  EarlyStopping es{EarlyStopping::Options{}};
  auto state = es.state();
  state["wait"] = 1e300;
  EXPECT_TRUE(contains(refusal([&] { es.load_state(state); }), "checkpoint state 'wait' is not an integer"));
  state["wait"] = int64_t{1} << 40;
  EXPECT_TRUE(contains(refusal([&] { es.load_state(state); }), "'wait'"));
  ReduceLROnPlateau plateau{ReduceLROnPlateau::Options{}};
  auto p = plateau.state();
  p["cooldown_counter"] = -1e20;
  EXPECT_TRUE(contains(refusal([&] { plateau.load_state(p); }), "'cooldown_counter'"));
  p["cooldown_counter"] = 2;
  EXPECT_NO_THROW(plateau.load_state(p));
}

}  // namespace
}  // namespace cifar
