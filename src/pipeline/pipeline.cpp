#include "pipeline/pipeline.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/printable.h"
#include "common/runtime.h"
#include "common/signals.h"
#include "common/torch_compat.h"
#include "config/cli.h"
#include "data/batches.h"
#include "data/cifar_reader.h"
#include "data/dataset.h"
#include "data/download.h"
#include "distributed/context.h"
#include "distributed/environment.h"
#include "distributed/process_group.h"
#include "evaluation/evaluate.h"
#include "evaluation/metrics.h"
#include "models/efficientnet.h"
#include "models/fastnet.h"
#include "models/registry.h"
#include "models/summary.h"
#include "reporting/gnuplot.h"
#include "reporting/html_report.h"
#include "reporting/plots.h"
#include "training/callbacks/csv_logger.h"
#include "training/callbacks/early_stopping.h"
#include "training/callbacks/history.h"
#include "training/callbacks/lr_schedule.h"
#include "training/callbacks/model_checkpoint.h"
#include "training/callbacks/monitor.h"
#include "training/callbacks/progress.h"
#include "training/callbacks/reduce_lr_on_plateau.h"
#include "training/callbacks/tensorboard_callback.h"
#include "training/callbacks/terminate_on_nan.h"
#include "training/checkpoint.h"
#include "training/pretrained_weights.h"
#include "training/trainer.h"

namespace cifar {
namespace fs = std::filesystem;
namespace {

void print_config(const Config& config, const torch::Device& device, int threads, const DistributedContext& dist) {
  const bool bf16 = use_bf16_autocast(config.train.mixed_precision, device);
  std::cout << "cifar10 " << CIFAR10_VERSION << " (LibTorch " << compat::torch_version() << ") on " << device.str()
            << (bf16 ? " (bf16 autocast)" : "") << ", " << threads << " threads, world size " << dist.world_size()
            << (dist.world_size() > 1 || dist.backend() != "none" ? " (" + dist.backend() + ")" : "")
            << "\nConfiguration:\n";
  const nlohmann::json j = config_to_json(config);
  for (const auto& [key, value] : j.items()) std::cout << "  " << key << " = " << json_text(value) << "\n";
}

// The original's visualisation stage: every plot it drew, plus the HTML
// report that gathers them. Plots are extras: a missing or failing gnuplot
// costs the plot it was drawing (a warning), not the run or the report.
void visualize(const RunPaths& paths, const nlohmann::json& summary, const nlohmann::json& inference,
               const std::optional<SplitEvaluation>& evaluation, const Splits& splits, const nlohmann::json& config) {
  std::vector<fs::path> plots;  // this run's, so the report shows no stale one
  const bool gnuplot = find_gnuplot().has_value();
  if (!gnuplot) std::cerr << "warning: " << kGnuplotMissing << "\n";
  auto draw = [&](const char* what, const std::function<fs::path()>& plot) {
    if (!gnuplot) return;
    try {
      plots.push_back(plot());
    } catch (const std::exception& e) {
      std::cerr << "warning: no " << what << " plot: " << first_line(e.what()) << "\n";
    }
  };
  std::vector<Logs> history;
  if (summary.contains("history")) {
    for (const auto& row : summary["history"]) {
      Logs logs;
      for (const auto& [k, v] : row.items()) {
        if (k != "epoch" && v.is_number()) logs[k] = v.get<double>();
      }
      history.push_back(logs);
    }
  }
  if (!history.empty()) draw("training history", [&] { return plot_training_history(history, paths.results); });
  if (evaluation) {
    const auto& r = evaluation->report;
    const int64_t c = r.confusion.size(0);
    auto counts = r.confusion.contiguous();
    std::vector<std::vector<int64_t>> matrix(c, std::vector<int64_t>(c));
    for (int64_t i = 0; i < c; ++i) {
      for (int64_t j = 0; j < c; ++j) matrix[i][j] = counts[i][j].item<int64_t>();
    }
    draw("confusion matrix", [&] { return plot_confusion_matrix(matrix, r.class_names, paths.results); });
    draw("class accuracy", [&] { return plot_class_accuracy(r.per_class_accuracy, r.class_names, paths.results); });
    // Per-image predictions cover rank 0's shard of the test set, which
    // starts at image 0.
    const int64_t n = std::min<int64_t>({kMaxPredictionSamples, splits.test.size(),
                                         static_cast<int64_t>(evaluation->predicted.size())});
    auto labels = splits.test.labels.slice(0, 0, n).contiguous();
    std::vector<int64_t> truth(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + n);
    std::vector<int64_t> predicted(evaluation->predicted.begin(), evaluation->predicted.begin() + n);
    std::vector<double> confidence(evaluation->confidence.begin(), evaluation->confidence.begin() + n);
    draw("sample predictions", [&] {
      return plot_prediction_samples(splits.test.images.slice(0, 0, n), truth, predicted, confidence, r.class_names,
                                     paths.results);
    });
    draw("confidence", [&] {
      return plot_confidence_distribution(r.confidences_correct, r.confidences_wrong, paths.results);
    });
    draw("reliability", [&] { return plot_reliability_diagram(r.reliability, r.ece, paths.results); });
  }
  nlohmann::json page = {{"training", summary}, {"config", config}};
  if (!inference.is_null()) page["inference"] = inference;
  write_html_report(paths.results, page, plots);
}

// Each rank evaluates its contiguous shard of the split (unpadded, so no
// image counts twice: REFERENCE #8); the counts are summed over ranks, so
// every number in the report covers the whole split. The per-image lists
// (predictions, raw confidences for the plots) stay rank 0's shard.
SplitEvaluation evaluate_sharded(Net& model, const ImageSet& set, const Normalization& norm,
                                 const EvalOptions& options, const std::vector<std::string>& class_names,
                                 DistributedContext& dist) {
  if (dist.world_size() == 1) return evaluate_split(model, set, norm, options, class_names);
  const auto [begin, end] = rank_range(set.size(), dist.rank(), dist.world_size());
  SplitEvaluation shard = evaluate_split(model, set.slice(begin, end), norm, options, class_names);
  auto counts = shard.counts.to_tensor();
  dist.all_reduce_sum(counts);
  shard.counts = EvalCounts::from_tensor(counts, static_cast<int64_t>(class_names.size()));
  EvalReport report = make_report(shard.counts, class_names);
  report.confidences_correct = std::move(shard.report.confidences_correct);
  report.confidences_wrong = std::move(shard.report.confidences_wrong);
  shard.report = std::move(report);
  return shard;
}

}  // namespace

namespace {

// The folder a checkpoint file lies in: made absolute ("latest_model.pt"
// from inside checkpoints/ has no parent to read), with the links of the
// file itself followed (a link to a run's checkpoint is that run's) but
// not those of its folders (a run whose checkpoints/ links to scratch
// storage is still the run holding the link).
std::filesystem::path checkpoint_folder(const std::string& checkpoint) {
  namespace fs = std::filesystem;
  fs::path file = fs::absolute(checkpoint).lexically_normal();
  std::error_code ec;
  for (int hops = 0; hops < 40 && fs::is_symlink(file, ec); ++hops) {
    const fs::path target = fs::read_symlink(file, ec);
    if (ec) break;
    file = (target.is_absolute() ? target : file.parent_path() / target).lexically_normal();
  }
  return file.parent_path();
}

// The run a checkpoint belongs to: the folder holding its checkpoints/
// folder; empty when the file lies elsewhere.
std::filesystem::path run_folder_of(const std::string& checkpoint) {
  const auto folder = checkpoint_folder(checkpoint);
  return folder.filename() == "checkpoints" ? folder.parent_path() : std::filesystem::path();
}

// The training record in a results folder (training_summary.json with a
// history), or null when there is none or it is unreadable.
nlohmann::json training_record(const std::filesystem::path& results) {
  const auto file = results / "training_summary.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return nullptr;
  try {
    auto summary = nlohmann::json::parse(read_file(file));
    return summary.is_object() && summary.contains("history") ? summary : nlohmann::json(nullptr);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Whether a results folder, whose training_record() is `record`, is a
// training run's: the record is there, or (the summary damaged or
// hand-edited) the History callback's file is.
bool holds_training_run(const std::filesystem::path& results, const nlohmann::json& record) {
  std::error_code ec;
  return !record.is_null() || std::filesystem::exists(results / "training_history.json", ec);
}

}  // namespace

std::vector<std::shared_ptr<Callback>> make_callbacks(const Config& config, const RunPaths& paths,
                                                      std::shared_ptr<History>& history) {
  const auto& t = config.train;
  std::vector<std::shared_ptr<Callback>> cbs;
  const std::string best_path = (paths.checkpoints / "best_model.pt").string();
  Monitor monitor{t.monitor, "auto", 0.0};
  if (t.lr_schedule == "plateau") {
    ReduceLROnPlateau::Options o;
    o.monitor = Monitor{t.monitor, "auto", 1e-4};
    o.factor = t.plateau_factor;
    o.patience = t.plateau_patience;
    o.min_lr = t.min_lr;
    cbs.push_back(std::make_shared<ReduceLROnPlateau>(o));
  } else if (t.lr_schedule != "constant") {
    LearningRateSchedule::Options o;
    o.kind = t.lr_schedule == "cosine"     ? LearningRateSchedule::Kind::kCosine
             : t.lr_schedule == "onecycle" ? LearningRateSchedule::Kind::kOneCycle
                                           : LearningRateSchedule::Kind::kStep;
    o.base_lr = t.learning_rate;
    o.warmup_epochs = t.warmup_epochs;
    o.step_size = t.step_size;
    o.gamma = t.step_gamma;
    cbs.push_back(std::make_shared<LearningRateSchedule>(o));
  }
  cbs.push_back(std::make_shared<TerminateOnNaN>());
  if (t.early_stopping_patience > 0) {
    EarlyStopping::Options o;
    o.monitor = monitor;
    o.patience = t.early_stopping_patience;
    o.restore_best_weights = t.restore_best_weights;
    o.best_weights_file = best_path;
    cbs.push_back(std::make_shared<EarlyStopping>(o));
  }
  history = std::make_shared<History>((paths.results / "training_history.json").string());
  cbs.push_back(history);
  // A resume in another output folder carries the run's log along, from
  // <run>/logs/ beside the checkpoint's <run>/checkpoints/.
  const auto resumed_run = config.run.resume.empty() ? std::filesystem::path() : run_folder_of(config.run.resume);
  const auto resumed_logs = resumed_run.empty() ? std::filesystem::path() : resumed_run / "logs";
  cbs.push_back(std::make_shared<CSVLogger>(paths.logs, ',', resumed_logs));
  cbs.push_back(std::make_shared<TensorBoardCallback>(paths.logs, t.log_every, resumed_logs));
  cbs.push_back(std::make_shared<ProgressBar>(std::cout, ::isatty(1) != 0));
  // Checkpoints last, so they capture every other callback's updated state.
  cbs.push_back(std::make_shared<ModelCheckpoint>(best_path, monitor, /*save_best_only=*/true));
  cbs.push_back(std::make_shared<ModelCheckpoint>((paths.checkpoints / "latest_model.pt").string(), monitor, false));
  return cbs;
}

namespace {

std::string describe_classes(const std::vector<std::string>& names) {
  std::string list;
  // The names are a checkpoint's or a batches.meta.txt's: quoted printably.
  for (size_t i = 0; i < names.size() && i < 10; ++i) list += (i ? ", " : "") + printable(names[i], 32);
  if (names.size() > 10) list += ", ...";
  return std::to_string(names.size()) + " classes (" + list + ")";
}

std::string describe_model(const ModelSpec& spec) {
  std::string out = spec.type;
  if (spec.type == "resnet") out += " depth " + std::to_string(spec.depth);
  if (spec.type == "fast") out += " width " + std::to_string(fast_net_width(spec));
  if (spec.type == "efficientnet") out += " input size " + std::to_string(spec.input_size);
  return out;
}

// "a resnet depth 18", "an efficientnet input size 32".
std::string a_model(const ModelSpec& spec) {
  return (spec.type.rfind('e', 0) == 0 ? "an " : "a ") + describe_model(spec);
}

// A resume continues the run the flags describe: the checkpoint must hold
// that model, or the user would silently train another architecture than
// the one asked for (the model itself is rebuilt from the checkpoint).
void check_resume_model(const Config& config, const ModelSpec& saved, const std::vector<std::string>& classes,
                        const std::string& path) {
  const ModelSpec wanted = make_spec(config.model, classes, saved.mean, saved.std);
  const bool same = saved.type == wanted.type && (saved.type != "resnet" || saved.depth == wanted.depth) &&
                    (saved.type != "fast" || fast_net_width(saved) == fast_net_width(wanted)) &&
                    (saved.type != "efficientnet" || saved.input_size == wanted.input_size);
  if (!same) {
    throw UserError("cannot resume from " + path + ": it holds " + a_model(saved) +
                    " model, but this run builds " + a_model(wanted) +
                    " (hint: resume with the model flags the run started with)");
  }
  // The model is rebuilt from the checkpoint, dropout included.
  if (wanted.dropout != saved.dropout) {
    throw UserError("cannot resume from " + path + ": its model has --dropout-rate " + json_text(saved.dropout) +
                    ", not " + json_text(wanted.dropout) +
                    " (hint: leave --dropout-rate out, or start a new run from its weights with --load-model)");
  }
}

// The model: from a checkpoint's own description (--load-model, --resume),
// or from the config, initialised as its architecture wants.
struct RunModel {
  NetPtr net;
  ModelSpec spec;
  std::string weights;  // the checkpoint it came from, if any
  std::string pretrained_report;  // what --pretrained-weights loaded
  // A resume's checkpoint, until Trainer::resume has taken the rest of its state.
  std::shared_ptr<const CheckpointData> resume_state;
};

// `read` is the checkpoint check_run_inputs read (null: read it here);
// `pretrained` the weights it obtained.
RunModel make_run_model(const Config& config, const Splits& splits, std::shared_ptr<const CheckpointData> read,
                        const PretrainedWeights* pretrained) {
  RunModel m;
  m.weights = !config.run.resume.empty() ? config.run.resume : config.run.load_model;
  std::shared_ptr<const CheckpointData> checkpoint;
  if (!m.weights.empty()) {
    checkpoint = read ? std::move(read) : std::make_shared<const CheckpointData>(read_checkpoint(m.weights));
    m.spec = spec_from_json(checkpoint->meta.at("spec"));
    if (m.spec.class_names != splits.class_names) {
      throw UserError("checkpoint " + m.weights + " was trained on " + describe_classes(m.spec.class_names) +
                      ", but this data has " + describe_classes(splits.class_names));
    }
    if (!config.run.resume.empty() && !config.run.skip_training) {
      check_resume_model(config, m.spec, splits.class_names, m.weights);
    }
  } else {
    const Normalization norm = make_normalization(config.data.normalization);
    m.spec = make_spec(config.model, splits.class_names, norm.mean, norm.std);
  }
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));
  m.net = build_model(m.spec);
  // A resume loads its weights with the rest of the run's state
  // (Trainer::resume); without training there is only the weights.
  if (checkpoint && (config.run.resume.empty() || config.run.skip_training)) {
    load_model_state(*checkpoint, *m.net, m.weights);
  } else if (checkpoint) {
    m.resume_state = checkpoint;
  } else {
    if (pretrained) m.pretrained_report = load_pretrained(*m.net, m.spec, pretrained->tensors, pretrained->file);
    // The fast net's frozen first layer whitens 2x2 patches of this
    // training data (airbench); 5,000 images estimate the covariance well.
    if (m.spec.type == "fast") {
      const int64_t n = std::min<int64_t>(5000, splits.train.size());
      init_whitening(*m.net, normalize_images(splits.train.images.slice(0, 0, n), Normalization{m.spec.mean, m.spec.std}));
    }
  }
  return m;
}

// A resume into another --output-dir brings the run's best checkpoint
// along from beside the resumed file: EarlyStopping restores the best
// weights from it at the end, and the new folder then holds the whole run.
// One already there is replaced: it belongs to another run (the resumed
// run's is beside its file), and restoring it would pass off that run's
// weights as this one's.
void carry_best_checkpoint(const std::string& resume, const RunPaths& paths) {
  const auto from = checkpoint_folder(resume) / "best_model.pt";
  const auto to = paths.checkpoints / "best_model.pt";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(from, ec) || std::filesystem::equivalent(from, to, ec)) return;
  write_file_atomic(to, read_file(from));
  std::cout << "Copied the run's best checkpoint " << from.string() << " to " << to.string() << "\n";
}

void print_model_summary(const Config& config, const DistEnvironment& env) {
  std::string weights = !config.run.resume.empty() ? config.run.resume : config.run.load_model;
  ModelSpec spec;
  if (!weights.empty()) {
    spec = spec_from_json(read_checkpoint(weights).meta.at("spec"));
  } else {
    const Normalization norm = make_normalization(config.data.normalization);
    spec = make_spec(config.model, std::vector<std::string>(kNumClasses, "class"), norm.mean, norm.std);
  }
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));
  auto model = build_model(spec);
  if (config.model.freeze_backbone && config.model.freeze_epochs > 0) set_backbone_trainable(*model, false);
  if (env.rank == 0) {
    if (!weights.empty()) std::cout << "The model in " << weights << ":\n";
    print_summary(*model, spec, std::cout);
  }
}

// Ranks started with different flags would fail in the first collective
// whose sizes differ, with an error from inside Gloo or NCCL (or train
// different models without a word); so they first agree on every setting
// but those that may differ between machines (paths, threads, device).
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
  // Per machine, or read only by rank 0 or the launcher.
  for (const char* local : {"data-dir", "data-archive", "data-url", "data-md5", "pretrained-url", "output-dir",
                            "threads", "device", "nproc-per-node", "num-gpus", "strategy", "skip-visualization"}) {
    settings.erase(local);
  }
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

// Each rank's share of a step's batch must hold two images for a batch-norm
// model: with a share of one at every step (--batch-size 2 over two ranks,
// --train-limit 1) the trainer left every part out, trained on nothing and
// reported a loss of 0. Only a short last batch may leave a rank one image.
void check_batch_shares(const Config& config, const Splits& splits, Net& model, int world_size) {
  if (config.run.skip_training || !has_batch_norm(model)) return;
  const int64_t batch = std::min<int64_t>(config.train.batch_size, splits.train.size());
  if (batch >= 2 * int64_t{world_size}) return;
  const std::string over = world_size > 1 ? " over " + std::to_string(world_size) + " ranks" : "";
  throw UserError("a training step of " + std::to_string(batch) + " image" + (batch == 1 ? "" : "s") + over +
                  " leaves a rank one image or none, which the model's batch norm cannot normalise (hint: use "
                  "--batch-size " + std::to_string(2 * world_size) + " or more" +
                  (splits.train.size() < config.train.batch_size ? " and a larger --train-limit" : "") + ")");
}

// Fits the model with a real run's callbacks; records the run in `summary`.
// Returns the exit code: 0, 1 when the loss diverged, 128+signal.
int train_stage(const Config& config, const RunPaths& paths, const Splits& splits, RunModel& model,
                const torch::Device& device, DistributedContext& dist, nlohmann::json& summary) {
  install_stop_signals();
  Trainer trainer(config, splits, model.net, model.spec, device, dist);
  std::shared_ptr<History> history;
  for (auto& cb : make_callbacks(config, paths, history)) trainer.add_callback(cb);
  if (!config.run.resume.empty()) {
    if (dist.is_writer()) carry_best_checkpoint(config.run.resume, paths);
    dist.barrier();
    trainer.resume(*model.resume_state, config.run.resume);
    model.resume_state.reset();  // its weights and optimiser state are the trainer's now
  }
  const FitResult fit = trainer.fit();
  // From here a signal ends the process as usual: what remains (evaluation,
  // plots) writes each file atomically, and a run already written is kept.
  // A signal that came after fit()'s last agreement is agreed here, once
  // no new one can set the flag, so every rank goes on to the evaluation or
  // none does.
  restore_default_signals();
  const int late_signal = fit.signal == 0 ? trainer.agreed_stop_signal() : 0;
  summary["epochs_run"] = history->epochs().size();
  // Said outright rather than left empty, so a reader of the JSON need not
  // know that "" means the run ended normally.
  const std::string last = std::to_string(config.train.epochs);
  summary["stop_reason"] = fit.stop_reason.empty() ? "completed: epoch " + last + " of " + last : fit.stop_reason;
  summary["wall_seconds"] = fit.wall_seconds;
  summary["train_seconds"] = fit.train_seconds;
  summary["images_per_second"] = fit.train_seconds > 0 ? fit.images_trained / fit.train_seconds : 0.0;
  summary["history"] = history->to_json();
  // The best epoch by the monitored metric, as ModelCheckpoint chose it.
  const Monitor monitor{config.train.monitor};
  double best = monitor.worst();
  const auto& epochs = history->epochs();
  for (size_t e = 0; e < epochs.size(); ++e) {
    auto v = monitor.value(epochs[e]);
    if (v && monitor.improved(*v, best)) {
      best = *v;
      summary["best_epoch"] = e + 1;
      summary["best_metrics"] = epochs[e];
    }
  }
  // A diverged run exits 1: its reason is an error, on stderr.
  if (!fit.stop_reason.empty() && dist.is_writer()) {
    if (fit.diverged) {
      std::cerr << "error: training stopped: " << fit.stop_reason << "\n";
    } else {
      std::cout << "Training stopped: " << fit.stop_reason << "\n";
    }
  }
  if (fit.signal) return 128 + fit.signal;
  if (late_signal) {
    if (dist.is_writer()) std::cout << "Stopped by a signal after training; the checkpoints are complete\n";
    return 128 + late_signal;
  }
  return fit.diverged ? 1 : 0;
}

// Before anything reads it: a missing file or folder named in one line.
void check_readable(const char* flag, const std::string& path) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (!regular || !in) {
    throw UserError(std::string("cannot read ") + flag + " " + path + ": " +
                    (!std::filesystem::exists(path, ec) ? "no such file" : regular ? "permission denied" : "not a file"));
  }
}

}  // namespace

Config resumed_run_config(const Config& config, const std::set<std::string>& given) {
  if (config.run.resume.empty()) return config;
  check_readable("--resume", config.run.resume);
  // This machine's and this invocation's: never the checkpoint's. A run
  // started from --load-model or --pretrained-weights has those weights in
  // the checkpoint already.
  static const std::set<std::string> kOwn = {
      "data-dir", "data-archive", "data-url", "data-md5", "output-dir", "threads", "device", "resume",
      "load-model", "pretrained-weights", "config", "summary", "skip-training", "skip-inference",
      "skip-visualization", "strategy", "num-gpus", "nproc-per-node", "dist-backend", "dist-timeout"};
  const nlohmann::json meta = read_checkpoint(config.run.resume).meta;
  const nlohmann::json known = config_to_json(config);
  nlohmann::json saved = nlohmann::json::object();
  if (meta.contains("config") && meta["config"].is_object()) {
    for (const auto& [key, value] : meta["config"].items()) {
      // Keys of another version's config are skipped, not refused.
      if (known.contains(key) && !given.count(key) && !kOwn.count(key)) saved[key] = value;
    }
  }
  // A preset only shapes the defaults, and a resumed run's defaults are its
  // own settings: a different one given here would change nothing but the
  // record, so it is refused like another --seed.
  if (given.count("preset")) {
    const auto run_preset = [](std::string p) { return p.empty() ? std::string("full") : p; };
    const bool has_preset = meta.contains("config") && meta["config"].is_object() &&
                            meta["config"].contains("preset") && meta["config"]["preset"].is_string();
    const std::string was = has_preset ? meta["config"]["preset"].get<std::string>() : "";
    if (run_preset(config.run.preset) != run_preset(was)) {
      throw UserError("--preset " + config.run.preset + ": checkpoint " + config.run.resume +
                      " continues a run made with " + (was.empty() ? std::string("no --preset") : "--preset " + was) +
                      ", and a resume keeps its settings (hint: leave out --preset; give the flags to change)");
    }
  }
  Config resumed = config;
  try {
    config_from_json(saved, resumed);
  } catch (const UserError& e) {
    throw UserError("checkpoint " + config.run.resume + ": its settings are unreadable: " + e.what());
  }
  // The model is the checkpoint's own (a run started from --load-model
  // saved the default model flags): unless a model type is given (and
  // checked against it), the model flags describe it.
  const ModelConfig checkpoint_model = model_flags(spec_from_json(meta.at("spec")));
  if (!given.count("model-type")) resumed.model.model_type = checkpoint_model.model_type;
  // A given type of the same family ("resnet" for a resnet20 run) takes
  // the checkpoint's shape where no flag gives it; "resnet56" names its
  // own depth, so a saved --depth must not contradict it.
  const std::string& type = resumed.model.model_type;
  if (model_family(type) == checkpoint_model.model_type) {
    if (!given.count("depth")) resumed.model.depth = model_family(type) != type ? 0 : checkpoint_model.depth;
    if (!given.count("width")) resumed.model.width = checkpoint_model.width;
    if (!given.count("input-size")) resumed.model.input_size = checkpoint_model.input_size;
  }
  // A saved width or input size of another architecture (the quick
  // preset's width beside --model-type cnn, from before it was refused).
  drop_other_models_flags(resumed.model, given);
  if (!given.count("dropout-rate")) resumed.model.dropout_rate = checkpoint_model.dropout_rate;
  // Training continues the run in its own folder; an evaluation
  // (--skip-training) writes where --load-model's would, leaving the run's
  // results as they are.
  if (!given.count("output-dir") && !config.run.skip_training) {
    if (const auto run = run_folder_of(config.run.resume); !run.empty()) resumed.run.output_dir = run.string();
  }
  try {
    validate(resumed);
  } catch (const UserError& e) {
    // "invalid --KEY ...": a KEY the user did not give is the run's own.
    const std::string what = e.what();
    const std::string prefix = "invalid --";
    const std::string key = what.rfind(prefix, 0) == 0
                                ? what.substr(prefix.size(), what.find(' ', prefix.size()) - prefix.size())
                                : std::string();
    if (key.empty() || given.count(key)) throw;
    throw UserError("checkpoint " + config.run.resume + "'s settings: " + what);
  }
  return resumed;
}

RunInputs check_run_inputs(const Config& config) {
  const RunPaths paths(config.run.output_dir);
  const std::pair<const char*, const std::string*> inputs[] = {{"--load-model", &config.run.load_model},
                                                               {"--resume", &config.run.resume},
                                                               {"--pretrained-weights", &config.model.pretrained_weights}};
  for (const auto& [flag, path] : inputs) {
    // --pretrained-weights imagenet and none name no file.
    const bool keyword =
        path == &config.model.pretrained_weights && (!wants_pretrained(config.model) || *path == "imagenet");
    if (!path->empty() && !keyword) check_readable(flag, *path);
  }
  // Their formats too: a Keras .h5 given as a checkpoint, or a resume of
  // another model than the flags build, fails here and not after the data.
  // --resume last: its checkpoint is the run's model when both are given,
  // as in make_run_model.
  RunInputs result;
  for (const std::string* path : {&config.run.load_model, &config.run.resume}) {
    if (path->empty()) continue;
    result.checkpoint = std::make_shared<const CheckpointData>(read_checkpoint(*path));
    const CheckpointData& checkpoint = *result.checkpoint;
    const ModelSpec saved = spec_from_json(checkpoint.meta.at("spec"));
    result.saved = saved;
    result.start = a_model(saved);
    if (path == &config.run.resume && !config.run.skip_training) {
      check_resume_model(config, saved, saved.class_names, *path);
      check_resume_settings(checkpoint.meta, config, *path);
      const ResumePoint at = resume_point(checkpoint.meta, *path);
      result.start = "epoch " + std::to_string(at.epoch) + " step " + std::to_string(at.step_in_epoch) + " of " +
                     result.start;
    }
  }
  if (wants_pretrained(config.model)) {
    result.pretrained = std::make_shared<const PretrainedWeights>(obtain_pretrained_weights(config.model));
  }
  // An evaluation writes into the output folder's results/: over a training
  // run's record only when it evaluates that run's own checkpoint (and then
  // keeps the record, see run_pipeline).
  if (config.run.skip_training && holds_training_run(paths.results, training_record(paths.results))) {
    const std::string& weights = !config.run.load_model.empty() ? config.run.load_model : config.run.resume;
    const auto run = weights.empty() ? std::filesystem::path() : run_folder_of(weights);
    std::error_code ec;
    if (run.empty() || !std::filesystem::equivalent(run, config.run.output_dir, ec)) {
      throw UserError("--output-dir " + config.run.output_dir + " holds the results of a training run (" +
                      (paths.results / "training_summary.json").string() + "), which evaluating " +
                      (weights.empty() ? std::string("a model") : weights) +
                      " there would replace (hint: pass another --output-dir for this evaluation)");
    }
  }
  // Training writes best_model.pt from its first epoch (every run starts
  // with no best), so a --load-model of that very file would be replaced
  // by the new run's first epoch.
  if (!config.run.load_model.empty() && !config.run.skip_training) {
    for (const char* name : {"best_model.pt", "latest_model.pt"}) {
      std::error_code ec;
      if (std::filesystem::equivalent(config.run.load_model, paths.checkpoints / name, ec)) {
        throw UserError("--load-model " + config.run.load_model + " is the checkpoint this run writes into " +
                        (paths.checkpoints / name).string() +
                        ", and training would replace it (hint: pass another --output-dir, or copy the file first)");
      }
    }
  }
  return result;
}

int run_pipeline(const Config& config) {
  const RunPaths paths(config.run.output_dir);
  const DistEnvironment env = detect_environment(process_environment());
  // Ranks on one machine share its cores; each uses the GPU of its local rank.
  const int threads = configure_threads(config.run.threads, env.local_world_size);
  const torch::Device device = resolve_device(config.run.device, env.local_rank);
  configure_determinism(config.run.deterministic);
  if (config.model.summary) {
    print_model_summary(config, env);
    return 0;
  }
  // The model flags and the input files are checked on every rank before
  // 180 MB of data are read. With a checkpoint the model is its own: a
  // resume's flags are checked against it (check_run_inputs), and
  // --load-model notes flags that do not apply.
  const Normalization norm = make_normalization(config.data.normalization);
  if (config.run.load_model.empty() && config.run.resume.empty()) {
    make_spec(config.model, std::vector<std::string>(kNumClasses, "class"), norm.mean, norm.std);
  }
  RunInputs inputs = check_run_inputs(config);
  auto dist = make_distributed_context(config.dist, env, device);
  check_ranks_agree(config, inputs.start, *dist);

  // The configuration printed and recorded in config.json: with a
  // checkpoint, its model's flags (the model used), not the flags' defaults.
  Config record = config;
  if (inputs.saved) record.model = model_flags(*inputs.saved, config.model);
  if (dist->is_writer()) {
    if (!inputs.saved && config.model.model_type == "efficientnet") {
      std::cout << describe_weights_origin(inputs.pretrained.get()) << "\n";
      if (inputs.pretrained && !inputs.pretrained->note.empty()) std::cout << inputs.pretrained->note << "\n";
    }
    print_config(record, device, threads, *dist);
    if (config.train.mixed_precision == "on" && !device.is_cuda() && !cpu_has_native_bf16()) {
      std::cout << "note: --mixed-precision on: oneDNN has no bf16 instructions here (the CPU lacks avx512_bf16 "
                   "and amx_bf16, or ONEDNN_MAX_CPU_ISA excludes them), so training stays in float32, which is "
                   "faster here\n";
    }
    // An evaluation writes results/ only: a run folder whose checkpoints
    // were made read-only is still evaluated in place.
    if (!config.run.skip_training) {
      for (const auto& dir : {paths.checkpoints, paths.logs}) ensure_writable_dir(dir);
    }
    ensure_writable_dir(paths.results);
  }

  // Rank 0 downloads or extracts; the others wait, then find the files in
  // place, so a missing archive is reported once and fetched once.
  std::filesystem::path batches;
  // An evaluation needs the test batch only (the normalisation is the
  // checkpoint's), so a folder without the training batches serves it.
  const bool test_only = config.run.skip_training;
  if (dist->is_writer()) batches = obtain_cifar10(config.data, test_only);
  dist->barrier();
  if (!dist->is_writer()) batches = obtain_cifar10(config.data, test_only);
  const Cifar10 cifar = read_cifar10(batches, !test_only);
  const Splits splits = make_splits(cifar, config.data, static_cast<uint64_t>(config.run.seed));
  if (dist->is_writer()) {
    std::cout << "Data: ";
    if (!test_only) std::cout << splits.train.size() << " train, " << splits.val.size() << " validation, ";
    std::cout << splits.test.size() << " test images from " << batches.string() << "\n";
  }

  RunModel model = make_run_model(config, splits, std::move(inputs.checkpoint), inputs.pretrained.get());
  // Where the Trainer would put it: an evaluation alone has no Trainer, and
  // its CUDA batches met CPU weights (found on an H200).
  model.net->to(device);
  const ModelSpec& spec = model.spec;
  // Training broadcasts rank 0's weights (Trainer); an evaluation does so
  // here, so ranks given different copies of "the same" checkpoint cannot
  // report a mixture of two models.
  if (config.run.skip_training) dist->broadcast_model(*model.net);
  check_batch_shares(config, splits, *model.net, dist->world_size());
  // --load-model rebuilds the checkpoint's own model; model flags naming
  // another (the default resnet aside, which a user need not have typed)
  // are not applied, and saying so beats training an unexpected model.
  const std::string weights_flag = !config.run.load_model.empty() ? "--load-model" : "--resume";
  if (!model.weights.empty() && (config.run.resume.empty() || config.run.skip_training) && dist->is_writer() &&
      (config.model.model_type != ModelConfig{}.model_type || config.model.depth != 0)) {
    std::string wanted;
    try {
      wanted = describe_model(make_spec(config.model, spec.class_names, spec.mean, spec.std));
    } catch (const UserError&) {
      wanted = config.model.model_type;  // flags that fit no model: not applied either
    }
    if (wanted != describe_model(spec)) {
      std::cout << "note: " << weights_flag << " " << model.weights << " holds " << a_model(spec)
                << " model, used as saved; the model flags (" << wanted << ") do not apply\n";
    }
  }
  if (dist->is_writer() && !model.pretrained_report.empty()) std::cout << model.pretrained_report << "\n";
  if (dist->is_writer()) {
    std::cout << "Model: " << spec.type << (spec.type == "resnet" ? std::to_string(spec.depth) : "") << ", "
              << count_parameters(*model.net) << " parameters\n";
  }
  // Written once the data and the model are in hand: a run that fails on
  // its inputs leaves the previous run's record in the folder as it was.
  // It describes the model used: a checkpoint's own, whatever the flags said.
  // An evaluation of a run's checkpoint in the run's folder (checked in
  // check_run_inputs) keeps the run's configuration and training record,
  // and updates the record's test figures.
  const nlohmann::json run_record = config.run.skip_training ? training_record(paths.results) : nullptr;
  const bool in_run = config.run.skip_training && holds_training_run(paths.results, run_record);
  nlohmann::json shown_config = config_to_json(record);  // what the report's table shows
  if (dist->is_writer() && !in_run) {
    write_file_atomic(paths.results / "config.json", json_text(shown_config, 2) + "\n");
  } else if (in_run) {
    try {
      shown_config = nlohmann::json::parse(read_file(paths.results / "config.json"));
    } catch (const std::exception&) {
      // No readable configuration of the run: the table shows this one's.
    }
  }
  nlohmann::json summary = !run_record.is_null() ? run_record
                                                 : nlohmann::json{{"model", spec_to_json(spec)},
                                                                  {"parameters", count_parameters(*model.net)},
                                                                  {"device", device.str()},
                                                                  {"world_size", dist->world_size()},
                                                                  {"threads", threads},
                                                                  {"version", CIFAR10_VERSION},
                                                                  {"torch_version", compat::torch_version()}};
  int exit_code = 0;
  if (!config.run.skip_training) exit_code = train_stage(config, paths, splits, model, device, *dist, summary);
  std::optional<SplitEvaluation> evaluation;
  nlohmann::json inference;
  if (!config.run.skip_inference && exit_code == 0) {
    EvalOptions options;
    options.device = device;
    options.tta = config.run.tta;
    options.autocast = use_bf16_autocast(config.train.mixed_precision, device);
    const auto eval_start = std::chrono::steady_clock::now();
    evaluation = evaluate_sharded(*model.net, splits.test, Normalization{spec.mean, spec.std}, options, spec.class_names,
                                  *dist);
    const auto& r = evaluation->report;
    ResultsInfo info{spec_to_json(spec), model.weights.empty() ? "(weights of this run)" : model.weights,
                     "test_batch.bin (" + std::to_string(splits.test.size()) + " images)", config.run.tta};
    inference = results_json(r, info);
    summary["test"] = {{"accuracy", r.accuracy}, {"top3_accuracy", r.top3_accuracy}, {"loss", r.loss},
                       {"num_samples", r.num_samples}, {"tta", config.run.tta}, {"checkpoint", info.checkpoint}};
    summary["eval_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
    if (dist->is_writer()) {
      write_file_atomic(paths.results / "inference_results.json", json_text(inference, 2) + "\n");
      std::cout << "Test accuracy: " << r.accuracy * 100 << "% (top-3 " << r.top3_accuracy * 100 << "%, loss "
                << r.loss << ") on " << r.num_samples << " images" << (config.run.tta ? " with TTA" : "");
      if (!config.run.skip_training && summary.contains("wall_seconds")) {
        std::cout << "; training + evaluation took "
                  << summary["wall_seconds"].get<double>() + summary["eval_seconds"].get<double>() << " s";
      }
      std::cout << "\n";
    }
  }
  if (dist->is_writer()) {
    write_file_atomic(paths.results / "training_summary.json", json_text(summary, 2) + "\n");
    if (!config.run.skip_visualization) visualize(paths, summary, inference, evaluation, splits, shown_config);
    std::cout << "Results in " << paths.results.string() << (config.run.skip_visualization ? "" : " (open report.html)")
              << "\n";
  }
  return exit_code;
}

}  // namespace cifar
