#include "reporting/html_report.h"

#include "reporting/format.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <locale>
#include <sstream>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"

namespace cifar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Plots under these stems come first, in pipeline order, with a caption.
struct KnownPlot {
  const char* stem;
  const char* caption;
};
constexpr KnownPlot kKnownPlots[] = {
    {"training_history", "Training history: loss, accuracy and learning rate per epoch"},
    {"confusion_matrix", "Confusion matrix on the test set (rows: true class)"},
    {"class_accuracy", "Per-class accuracy on the test set"},
    {"confidence_distribution", "Confidence of correct and wrong predictions"},
    {"reliability_diagram", "Calibration: accuracy per confidence bin"},
    {"prediction_samples", "Sample test predictions (wrong ones in a dashed orange frame)"},
};

// A configuration value longer than this many list entries is summarised:
// the table is the run's record, but a list of thousands says nothing.
constexpr size_t kMaxListedValues = 20;

const char* const kStyle = R"(
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { margin-bottom: 0.3em; }
.meta, .note { color: #666; }
.meta { margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.5em 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.8em 1.2em; min-width: 9em; background: #fafafa; }
.card .label { color: #666; font-size: 0.9em; }
.card .value { font-size: 1.6em; font-weight: 600; }
.card .note { font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff4d6; font-weight: 600; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; margin-top: 0.4em; }
)";

// ---- Numbers for people ------------------------------------------------------

// "87.44%"; a ratio with nothing to divide by (null, NaN) is "n/a".
std::string percent_text(double fraction) {
  if (!std::isfinite(fraction)) return "n/a";
  return format_fixed(fraction * 100, 2) + "%";
}

// `digits` significant digits, trailing zeros kept so a column lines up:
// 2.278777 -> "2.279", 0.0123456 -> "0.01235". Below 1e-4 or from 1e6 on,
// scientific ("1.000e-06"): fixed notation would need a dozen digits.
std::string significant_text(double v, int digits = 4) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
  if (v == 0) return format_fixed(0, digits - 1);
  const double magnitude = std::fabs(v);
  if (magnitude < 1e-4 || magnitude >= 1e6) {
    std::ostringstream o;
    o.imbue(std::locale::classic());
    o << std::scientific << std::setprecision(digits - 1) << v;
    return o.str();
  }
  // Rounded first, so 9.9996 becomes "10.00", not "10.000".
  const int exponent = static_cast<int>(std::floor(std::log10(magnitude)));
  const double scale = std::pow(10.0, digits - 1 - exponent);
  const double rounded = std::round(v * scale) / scale;
  const int rounded_exponent = static_cast<int>(std::floor(std::log10(std::fabs(rounded))));
  return format_fixed(rounded, std::max(0, digits - 1 - rounded_exponent));
}

// A learning rate: 3 significant digits without trailing zeros, as one
// would write it ("0.2", "0.0668", "1e-06").
std::string rate_text(double v) {
  std::ostringstream o;
  o.imbue(std::locale::classic());
  o << std::setprecision(3) << v;
  return o.str();
}

// "10,000".
std::string count_text(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
  return (n < 0 ? "-" : "") + digits;
}

// "5.7 s", "11 min 44 s", "2 h 03 min".
std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "n/a";
  if (s < 60) return format_fixed(s, 1) + " s";
  const auto total = static_cast<int64_t>(std::llround(s));
  const int64_t h = total / 3600, m = total % 3600 / 60, sec = total % 60;
  std::ostringstream o;
  if (h) {
    o << h << " h " << std::setw(2) << std::setfill('0') << m << " min";
  } else {
    o << m << " min " << std::setw(2) << std::setfill('0') << sec << " s";
  }
  return o.str();
}

std::string list_text(const std::vector<double>& values) {
  std::string s;
  for (double v : values) s += (s.empty() ? "" : ", ") + significant_text(v);
  return s;
}

// ---- Reading the run's JSON --------------------------------------------------

// A present, non-null member of an object.
const json* member(const json* obj, const char* key) {
  if (!obj || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  return it == obj->end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number(const json* obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_number() ? std::optional<double>(v->get<double>()) : std::nullopt;
}

std::optional<int64_t> integer(const json* obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_number_integer() ? std::optional<int64_t>(v->get<int64_t>()) : std::nullopt;
}

std::optional<std::string> text(const json* obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_string() ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
}

std::optional<bool> flag(const json* obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_boolean() ? std::optional<bool>(v->get<bool>()) : std::nullopt;
}

std::vector<double> numbers(const json* obj, const char* key) {
  std::vector<double> out;
  const json* v = member(obj, key);
  if (!v || !v->is_array()) return out;
  for (const auto& e : *v) {
    if (e.is_number()) out.push_back(e.get<double>());
  }
  return out;
}

// A configuration value as the table shows it: the record, so numbers stay
// as written (JSON's shortest form), strings unquoted.
std::string config_value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    if (v.size() > kMaxListedValues) return "[" + std::to_string(v.size()) + " values]";
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ", ") + config_value_text(e);
    return "[" + s + "]";
  }
  return v.dump();
}

// ---- HTML --------------------------------------------------------------------

struct Cell {
  std::string text;
  bool numeric = false;
};

Cell num_cell(std::string text) { return {std::move(text), true}; }

// Two columns, a label and its value, every value left-aligned (a mix of
// numbers and words in one column reads best so); rows with an empty value
// are left out unless `keep_empty` (the configuration, where "" is a
// setting too).
void key_value_table(std::ostringstream& out, const std::vector<std::pair<std::string, std::string>>& rows,
                     bool keep_empty = false) {
  std::ostringstream body;
  for (const auto& [label, value] : rows) {
    if (value.empty() && !keep_empty) continue;
    body << "<tr><th>" << html_escape(label) << "</th><td>" << html_escape(value) << "</td></tr>\n";
  }
  if (!body.str().empty()) out << "<table>\n" << body.str() << "</table>\n";
}

struct Row {
  std::vector<Cell> cells;
  bool best = false;
};

void grid_table(std::ostringstream& out, const std::vector<std::string>& header, const std::vector<Row>& rows) {
  out << "<table>\n<tr>";
  for (const auto& h : header) out << "<th>" << html_escape(h) << "</th>";
  out << "</tr>\n";
  for (const auto& row : rows) {
    out << (row.best ? "<tr class=\"best\">" : "<tr>");
    for (const auto& c : row.cells) {
      out << "<td" << (c.numeric ? " class=\"num\"" : "") << ">" << html_escape(c.text) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table>\n";
}

void card(std::ostringstream& out, const std::string& label, const std::string& value, const std::string& note = {}) {
  out << "<div class=\"card\"><div class=\"label\">" << html_escape(label) << "</div><div class=\"value\">"
      << html_escape(value) << "</div>";
  if (!note.empty()) out << "<div class=\"note\">" << html_escape(note) << "</div>";
  out << "</div>\n";
}

// ---- The run's parts, as the pipeline writes them ------------------------------
// training: training_summary.json (src/pipeline/pipeline.cpp: model,
// parameters, data, epochs_run, stop_reason, wall_seconds, train_seconds,
// images_per_second, history, best_epoch, best_metrics, test, eval_seconds,
// device, threads, world_size, version, torch_version).
// inference: inference_results.json (src/evaluation/metrics.cpp
// results_json: accuracy, top3_accuracy, loss, num_samples, per_class,
// class_names, confidence, calibration, model, checkpoint, data, tta).
struct Parts {
  const json* training = nullptr;
  const json* inference = nullptr;
  const json* config = nullptr;
  // Test figures: inference_results.json's, else the training record's
  // copy ("test"), which is all an evaluation-less page has.
  const json* test = nullptr;
  const json* model = nullptr;
};

std::string model_name(const json* model) {
  const auto type = text(model, "type");
  if (!type) return "";
  const auto depth = integer(model, "depth");
  if (*type == "resnet") return "ResNet" + (depth ? "-" + std::to_string(*depth) : std::string());
  if (*type == "fast") return "fast net";
  if (*type == "cnn") return "CNN";
  if (*type == "efficientnet") return "EfficientNet-B0";
  if (*type == "mlp") return "MLP";
  return *type;
}

void headline(std::ostringstream& out, const Parts& p) {
  std::ostringstream cards;
  const bool tta = flag(p.test, "tta").value_or(false);
  if (auto v = number(p.test, "accuracy")) card(cards, "Test accuracy", percent_text(*v), tta ? "with TTA" : "");
  if (auto v = number(p.test, "top3_accuracy")) card(cards, "Top-3 accuracy", percent_text(*v));
  if (auto v = number(p.test, "loss")) card(cards, "Test loss", significant_text(*v));
  if (auto v = number(member(p.inference, "calibration"), "ece")) card(cards, "ECE", significant_text(*v));
  const std::string name = model_name(p.model);
  if (!name.empty()) card(cards, "Model", name);
  if (auto v = integer(p.training, "epochs_run")) card(cards, "Epochs", std::to_string(*v));
  // wall_seconds is the whole fit (validation and checkpoints included).
  if (auto v = number(p.training, "wall_seconds")) card(cards, "Training time", duration_text(*v));
  // best_metrics is the best epoch by --monitor (val_loss by default), the
  // one ModelCheckpoint kept: its val_accuracy need not be the highest.
  if (auto v = number(member(p.training, "best_metrics"), "val_accuracy")) {
    const auto epoch = integer(p.training, "best_epoch");
    card(cards, epoch ? "Val accuracy (best epoch, " + std::to_string(*epoch) + ")" : "Val accuracy (best epoch)",
         percent_text(*v));
  }
  if (!cards.str().empty()) out << "<div class=\"cards\">\n" << cards.str() << "</div>\n";
}

void model_section(std::ostringstream& out, const Parts& p) {
  if (!p.model) return;
  const auto type = text(p.model, "type").value_or("");
  std::vector<std::pair<std::string, std::string>> rows;
  rows.push_back({"Model", {model_name(p.model) + (type.empty() ? "" : " (--model-type " + type + ")")}});
  // Only the shape that applies to this architecture: depth is ResNet's,
  // width the fast net's, the input size EfficientNet's; the fast net has
  // no dropout (src/models/registry.cpp).
  if (type == "resnet") {
    if (auto v = integer(p.model, "depth")) rows.push_back({"Depth", std::to_string(*v)});
  }
  if (type == "fast") {
    if (auto v = integer(p.model, "width")) rows.push_back({"Width", std::to_string(*v)});
  }
  if (type == "efficientnet") {
    if (auto v = integer(p.model, "input_size")) {
      rows.push_back({"Input size", {std::to_string(*v) + " x " + std::to_string(*v) + " px"}});
    }
  }
  if (type != "fast") {
    if (auto v = number(p.model, "dropout")) rows.push_back({"Dropout", significant_text(*v, 2)});
  }
  if (auto v = integer(p.training, "parameters")) rows.push_back({"Parameters", count_text(*v)});
  if (const json* names = member(p.model, "class_names"); names && names->is_array()) {
    std::string list;
    for (const auto& n : *names) list += (list.empty() ? "" : ", ") + (n.is_string() ? n.get<std::string>() : n.dump());
    rows.push_back({"Classes", {std::to_string(names->size()) + ": " + list}});
  }
  out << "<h2>Model</h2>\n";
  key_value_table(out, rows);
}

std::string augmentation_text(const json* config) {
  std::vector<std::string> parts;
  if (flag(config, "flip").value_or(false)) parts.push_back("horizontal flip");
  if (auto v = integer(config, "crop-padding"); v && *v > 0) {
    parts.push_back("random crop (" + std::to_string(*v) + " px padding)");
  }
  if (auto v = number(config, "rotation"); v && *v > 0) {
    parts.push_back("rotation up to " + significant_text(*v, 3) + " degrees");
  }
  if (auto v = number(config, "translation"); v && *v > 0) parts.push_back("shift up to " + percent_text(*v));
  if (auto v = number(config, "zoom"); v && *v > 0) parts.push_back("zoom up to " + percent_text(*v));
  if (auto v = integer(config, "cutout"); v && *v > 0) parts.push_back("cutout " + std::to_string(*v) + " px");
  if (parts.empty()) return config ? "none" : "";
  std::string s;
  for (const auto& part : parts) s += (s.empty() ? "" : ", ") + part;
  return s;
}

void data_section(std::ostringstream& out, const Parts& p) {
  const json* data = member(p.training, "data");
  std::vector<std::pair<std::string, std::string>> rows;
  rows.push_back({"Data folder", {text(p.config, "data-dir").value_or("")}});
  // An evaluation reads no training images: its counts are 0, not shown.
  if (auto v = integer(data, "train_images"); v && *v > 0) {
    rows.push_back({"Training images", count_text(*v)});
  }
  if (auto v = integer(data, "validation_images"); v && *v > 0) {
    rows.push_back({"Validation images", count_text(*v)});
  }
  if (auto v = integer(p.test, "num_samples")) rows.push_back({"Test images", count_text(*v)});
  if (auto v = integer(p.config, "batch-size")) rows.push_back({"Batch size", std::to_string(*v)});
  rows.push_back({"Augmentation", {augmentation_text(p.config)}});
  if (auto kind = text(p.config, "normalization")) {
    std::string s = *kind == "standard" ? "per-channel standardisation" : *kind == "unit" ? "scaled to [0, 1]" : *kind;
    const auto mean = numbers(p.model, "mean"), std = numbers(p.model, "std");
    if (*kind == "standard" && !mean.empty()) s += " (mean " + list_text(mean) + "; std " + list_text(std) + ")";
    rows.push_back({"Normalisation", {s}});
  }
  std::ostringstream table;
  key_value_table(table, rows);
  if (!table.str().empty()) out << "<h2>Data</h2>\n" << table.str();
}

// The history's known columns, in the order Keras' progress bar shows them.
struct HistoryColumn {
  const char* key;
  const char* header;
  bool percent;
};
constexpr HistoryColumn kHistoryColumns[] = {
    {"loss", "Loss", false},
    {"accuracy", "Accuracy", true},
    {"top3_accuracy", "Top-3", true},
    {"val_loss", "Val loss", false},
    {"val_accuracy", "Val accuracy", true},
    {"val_top3_accuracy", "Val top-3", true},
};

void epoch_table(std::ostringstream& out, const json& history, const Parts& p) {
  const auto best = integer(p.training, "best_epoch");
  // The trainer logs the rate as Keras 3 does, "learning_rate"; older
  // records have "lr".
  auto rate_of = [](const json& row) {
    const auto rate = number(&row, "learning_rate");
    return rate ? rate : number(&row, "lr");
  };
  std::vector<const HistoryColumn*> columns;
  bool rate = false;
  for (const auto& c : kHistoryColumns) {
    if (std::any_of(history.begin(), history.end(), [&](const json& row) { return number(&row, c.key).has_value(); })) {
      columns.push_back(&c);
    }
  }
  for (const auto& row : history) rate = rate || rate_of(row).has_value();
  std::vector<std::string> header{"Epoch"};
  for (const auto* c : columns) header.push_back(c->header);
  if (rate) header.push_back("Learning rate");
  std::vector<Row> rows;
  for (size_t i = 0; i < history.size(); ++i) {
    const json& entry = history[i];
    if (!entry.is_object()) continue;
    const int64_t epoch = integer(&entry, "epoch").value_or(static_cast<int64_t>(i) + 1);
    Row row;
    row.best = best && *best == epoch;
    row.cells.push_back(num_cell((row.best ? "\u2605 " : "") + std::to_string(epoch)));
    for (const auto* c : columns) {
      const auto v = number(&entry, c->key);
      row.cells.push_back(num_cell(!v ? "" : c->percent ? percent_text(*v) : significant_text(*v)));
    }
    if (rate) {
      const auto v = rate_of(entry);
      row.cells.push_back(num_cell(v ? rate_text(*v) : ""));
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return;
  out << "<h3>Per epoch</h3>\n";
  grid_table(out, header, rows);
  if (best) {
    const std::string monitor = text(p.config, "monitor").value_or("the monitored metric");
    out << "<p class=\"note\">\u2605 best epoch by " << html_escape(monitor)
        << ": the weights in checkpoints/best_model.pt</p>\n";
  }
}

void training_section(std::ostringstream& out, const Parts& p) {
  if (!member(p.training, "epochs_run") && !member(p.training, "history")) return;
  std::vector<std::pair<std::string, std::string>> rows;
  if (auto run = integer(p.training, "epochs_run")) {
    const auto planned = integer(p.config, "epochs");
    rows.push_back({"Epochs", {std::to_string(*run) + (planned ? " of " + std::to_string(*planned) : "")}});
  }
  rows.push_back({"Stopped", {text(p.training, "stop_reason").value_or("")}});
  if (auto best = integer(p.training, "best_epoch")) {
    const std::string monitor = text(p.config, "monitor").value_or("the monitor");
    rows.push_back({"Best epoch", {std::to_string(*best) + " by " + monitor}});
  }
  if (auto v = number(p.training, "wall_seconds")) {
    rows.push_back({"Time", {duration_text(*v) + " (validation and checkpoints included)"}});
  }
  if (auto v = number(p.training, "train_seconds")) rows.push_back({"Time in training steps", {duration_text(*v)}});
  if (auto v = number(p.training, "images_per_second"); v && *v > 0) {
    const std::string rate = *v >= 100 ? count_text(std::llround(*v)) : significant_text(*v, 3);
    rows.push_back({"Throughput", {rate + " images/s"}});
  }
  if (auto opt = text(p.config, "optimizer")) {
    std::string s = *opt;
    if (auto lr = number(p.config, "learning-rate")) s += ", learning rate " + rate_text(*lr);
    if (auto schedule = text(p.config, "lr-schedule")) s += ", " + *schedule + " schedule";
    rows.push_back({"Optimiser", {s}});
  }
  if (auto device = text(p.training, "device")) {
    std::string s = *device;
    if (auto threads = integer(p.training, "threads")) s += ", " + std::to_string(*threads) + " threads";
    const auto world = integer(p.training, "world_size");
    if (world && *world > 1) s += ", " + std::to_string(*world) + " ranks";
    if (auto version = text(p.training, "version")) s += "; cifar10 " + *version;
    if (auto torch = text(p.training, "torch_version")) s += ", LibTorch " + *torch;
    rows.push_back({"Ran on", {s}});
  }
  out << "<h2>Training</h2>\n";
  key_value_table(out, rows);
  if (const json* history = member(p.training, "history"); history && history->is_array()) {
    epoch_table(out, *history, p);
  }
}

void per_class_table(std::ostringstream& out, const Parts& p) {
  const json* per_class = member(p.inference, "per_class");
  if (!per_class || !per_class->is_object() || per_class->empty()) return;
  // Class-index order where the names are given (an object's keys sort).
  std::vector<std::string> order;
  if (const json* names = member(p.inference, "class_names"); names && names->is_array()) {
    for (const auto& n : *names) {
      if (n.is_string() && per_class->contains(n.get<std::string>())) order.push_back(n.get<std::string>());
    }
  }
  for (auto it = per_class->begin(); it != per_class->end(); ++it) {
    if (std::find(order.begin(), order.end(), it.key()) == order.end()) order.push_back(it.key());
  }
  std::vector<Row> rows;
  for (const auto& name : order) {
    const json& k = per_class->at(name);
    if (!k.is_object()) continue;
    // null: a ratio with nothing to divide by (a class with no test images).
    auto ratio = [&](const char* key) {
      return num_cell(k.contains(key) ? percent_text(number(&k, key).value_or(NAN)) : "");
    };
    auto count = [&](const char* key) {
      const auto v = integer(&k, key);
      return num_cell(v ? count_text(*v) : "");
    };
    Row row;
    row.cells = {Cell{name}, ratio("accuracy"), ratio("precision"), ratio("recall"), ratio("f1"), count("support"),
                 count("predicted")};
    rows.push_back(std::move(row));
  }
  out << "<h3>Per class</h3>\n";
  grid_table(out, {"Class", "Accuracy", "Precision", "Recall", "F1", "Test images", "Predicted"}, rows);
}

void test_section(std::ostringstream& out, const Parts& p) {
  if (!p.test) return;
  std::vector<std::pair<std::string, std::string>> rows;
  if (auto v = number(p.test, "accuracy")) rows.push_back({"Accuracy", percent_text(*v)});
  if (auto v = number(p.test, "top3_accuracy")) rows.push_back({"Top-3 accuracy", percent_text(*v)});
  if (auto v = number(p.test, "loss")) rows.push_back({"Loss", significant_text(*v)});
  if (auto v = number(member(p.inference, "calibration"), "ece")) {
    rows.push_back({"Expected calibration error", significant_text(*v)});
  }
  if (auto tta = flag(p.test, "tta")) {
    rows.push_back({"Test-time augmentation", {*tta ? "yes: each image's flipped and shifted views averaged" : "no"}});
  }
  const json* confidence = member(p.inference, "confidence");
  auto confidence_of = [&](const char* group) {
    const json* g = member(confidence, group);
    const auto mean = number(g, "mean");
    const auto count = integer(g, "count");
    if (!count || *count == 0) return std::string();
    return (mean ? percent_text(*mean) : std::string("n/a")) + " over " + count_text(*count);
  };
  const std::string right = confidence_of("correct"), wrong = confidence_of("wrong");
  if (!right.empty() || !wrong.empty()) {
    rows.push_back({"Mean confidence", {(right.empty() ? "" : "right: " + right) +
                                        (!right.empty() && !wrong.empty() ? "; " : "") +
                                        (wrong.empty() ? "" : "wrong: " + wrong)}});
  }
  rows.push_back({"Test data", {text(p.inference, "data").value_or("")}});
  rows.push_back({"Weights", {text(p.test, "checkpoint").value_or("")}});
  if (auto v = number(p.training, "eval_seconds")) rows.push_back({"Evaluation time", {duration_text(*v)}});
  std::ostringstream table;
  key_value_table(table, rows);
  per_class_table(table, p);
  if (!table.str().empty()) out << "<h2>Test results</h2>\n" << table.str();
}

// "a.b.c" rows of a configuration object.
void flatten(const json& obj, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& rows) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object() && !it->empty()) {
      flatten(*it, key, rows);
    } else {
      rows.push_back({key, it->is_null() ? "null" : config_value_text(*it)});
    }
  }
}

// Where a plot goes in the page: its index in kKnownPlots, or after them.
size_t known_rank(const fs::path& p) {
  size_t i = 0;
  for (; i < std::size(kKnownPlots); ++i) {
    if (p.stem() == kKnownPlots[i].stem) break;
  }
  return i;
}

// Known plots first in pipeline order, then the rest by path.
void sort_plots(std::vector<fs::path>& plots) {
  std::stable_sort(plots.begin(), plots.end(), [](const fs::path& a, const fs::path& b) {
    return std::make_pair(known_rank(a), a.string()) < std::make_pair(known_rank(b), b.string());
  });
}

// PNGs in results_dir and its direct subfolders, known plots first in
// pipeline order, then the rest by path. Two levels listed one folder at a
// time rather than with recursive_directory_iterator, which mixes two
// copies of libstdc++ in processes linked to PyTorch's wheels (see
// remove_tree in common/atomic_file.h).
std::vector<fs::path> find_plots(const fs::path& results_dir) {
  std::vector<fs::path> found;
  std::vector<fs::path> subfolders;
  auto scan = [&](const fs::path& dir, bool top) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // temporaries and hidden folders
      std::error_code type_ec;
      if (it->is_directory(type_ec)) {
        // Linked folders are not entered, as the recursive iterator did not.
        if (top && !it->is_symlink(type_ec)) subfolders.push_back(it->path());
      } else if (it->is_regular_file(type_ec) && it->path().extension() == ".png") {
        found.push_back(it->path());
      }
    }
  };
  scan(results_dir, true);
  for (const auto& dir : subfolders) scan(dir, false);
  sort_plots(found);
  return found;
}

void check_object(const json* v, const char* name) {
  if (v && !v->is_object()) {
    throw UserError(std::string("report summary: \"") + name + "\" must be a JSON object, got " +
                    v->type_name());
  }
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  // OpenSSL is linked already; EVP_EncodeBlock writes unbroken padded
  // base64 (no line breaks, unlike the BIO filter) plus a NUL.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void write_html_report(const fs::path& results_dir, const json& summary,
                       const std::optional<std::vector<fs::path>>& plot_files) {
  check_input(summary.is_object() || summary.is_null(),
              std::string("report summary must be a JSON object, got ") + summary.type_name());
  Parts p;
  p.training = member(&summary, "training");
  p.inference = member(&summary, "inference");
  p.config = member(&summary, "config");
  check_object(p.training, "training");
  check_object(p.inference, "inference");
  check_object(p.config, "config");
  p.test = p.inference ? p.inference : member(p.training, "test");
  p.model = member(p.training, "model") ? member(p.training, "model") : member(p.inference, "model");
  ensure_dir(results_dir);

  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>CIFAR-10 report</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n"
      << "<h1>CIFAR-10 report</h1>\n<p class=\"meta\">Generated " << html_escape(utc_now())
      << " from " << html_escape(fs::absolute(results_dir).lexically_normal().string()) << "</p>\n";

  headline(out, p);
  model_section(out, p);
  data_section(out, p);
  training_section(out, p);
  test_section(out, p);

  std::vector<fs::path> plots;
  if (plot_files) {
    plots = *plot_files;
    sort_plots(plots);
  } else {
    plots = find_plots(results_dir);
  }
  if (!plots.empty()) out << "<h2>Plots</h2>\n";
  for (const auto& png : plots) {
    const std::string rel = png.lexically_relative(results_dir).string();
    std::string caption = png.stem().string();
    for (const auto& k : kKnownPlots) {
      if (png.stem() == k.stem) caption = k.caption;
    }
    out << "<figure>\n<img alt=\"" << html_escape(caption) << "\" src=\"data:image/png;base64,"
        << base64_encode(read_file(png)) << "\">\n<figcaption>" << html_escape(caption) << " ("
        << html_escape(rel) << ")</figcaption>\n</figure>\n";
  }

  if (p.config && !p.config->empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    flatten(*p.config, "", rows);
    out << "<h2>Configuration</h2>\n<p class=\"note\">Every setting of the run, as results/config.json holds it.</p>\n";
    key_value_table(out, rows, /*keep_empty=*/true);
  }
  out << "</body>\n</html>\n";
  write_file_atomic(results_dir / "report.html", out.str());
}

}  // namespace cifar
