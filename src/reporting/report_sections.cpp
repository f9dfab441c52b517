#include "reporting/report_sections.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "reporting/format.h"
#include "reporting/html_report.h"
#include "reporting/html_writer.h"

namespace cifar::html {

namespace {

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

}  // namespace

void headline(std::ostringstream& out, const Parts& p) {
  std::ostringstream cards;
  const bool tta = flag(p.test, "tta").value_or(false);
  if (auto v = number(p.test, "accuracy")) card(cards, "Test accuracy", format_percent(*v), tta ? "with TTA" : "");
  if (auto v = number(p.test, "top3_accuracy")) card(cards, "Top-3 accuracy", format_percent(*v));
  if (auto v = number(p.test, "loss")) card(cards, "Test loss", format_number(*v));
  if (auto v = number(member(p.inference, "calibration"), "ece")) card(cards, "ECE", format_number(*v));
  const std::string name = model_name(p.model);
  if (!name.empty()) card(cards, "Model", name);
  if (auto v = integer(p.training, "epochs_run")) card(cards, "Epochs", std::to_string(*v));
  // wall_seconds is the whole fit (validation and checkpoints included).
  if (auto v = number(p.training, "wall_seconds")) card(cards, "Training time", format_duration(*v));
  // best_metrics is the best epoch by --monitor (val_loss by default), the
  // one ModelCheckpoint kept: its val_accuracy need not be the highest.
  if (auto v = number(member(p.training, "best_metrics"), "val_accuracy")) {
    const auto epoch = integer(p.training, "best_epoch");
    card(cards, epoch ? "Val accuracy (best epoch, " + std::to_string(*epoch) + ")" : "Val accuracy (best epoch)",
         format_percent(*v));
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
    if (auto v = number(p.model, "dropout")) rows.push_back({"Dropout", format_number(*v, 2)});
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

namespace {

std::string augmentation_text(const json* config) {
  std::vector<std::string> parts;
  if (flag(config, "flip").value_or(false)) parts.push_back("horizontal flip");
  if (auto v = integer(config, "crop-padding"); v && *v > 0) {
    parts.push_back("random crop (" + std::to_string(*v) + " px padding)");
  }
  if (auto v = number(config, "rotation"); v && *v > 0) {
    parts.push_back("rotation up to " + format_number(*v, 3) + " degrees");
  }
  if (auto v = number(config, "translation"); v && *v > 0) parts.push_back("shift up to " + format_percent(*v));
  if (auto v = number(config, "zoom"); v && *v > 0) parts.push_back("zoom up to " + format_percent(*v));
  if (auto v = integer(config, "cutout"); v && *v > 0) parts.push_back("cutout " + std::to_string(*v) + " px");
  if (parts.empty()) return config ? "none" : "";
  std::string s;
  for (const auto& part : parts) s += (s.empty() ? "" : ", ") + part;
  return s;
}

}  // namespace

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
namespace {
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
}  // namespace

namespace {

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
      row.cells.push_back(num_cell(!v ? "" : c->percent ? format_percent(*v) : format_number(*v)));
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

}  // namespace

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
    rows.push_back({"Time", {format_duration(*v) + " (validation and checkpoints included)"}});
  }
  if (auto v = number(p.training, "train_seconds")) rows.push_back({"Time in training steps", {format_duration(*v)}});
  if (auto v = number(p.training, "images_per_second"); v && *v > 0) {
    const std::string rate = *v >= 100 ? count_text(std::llround(*v)) : format_number(*v, 3);
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

namespace {

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
      return num_cell(k.contains(key) ? format_percent(number(&k, key).value_or(NAN)) : "");
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

}  // namespace

void test_section(std::ostringstream& out, const Parts& p) {
  if (!p.test) return;
  std::vector<std::pair<std::string, std::string>> rows;
  if (auto v = number(p.test, "accuracy")) rows.push_back({"Accuracy", format_percent(*v)});
  const json* plain = member(p.inference, "without_tta");
  if (auto v = number(plain, "accuracy")) rows.push_back({"Accuracy without TTA", format_percent(*v)});
  if (auto v = number(p.test, "top3_accuracy")) rows.push_back({"Top-3 accuracy", format_percent(*v)});
  if (auto v = number(p.test, "loss")) {
    const auto what = text(p.inference, "loss_definition");
    rows.push_back({"Loss", {format_number(*v) + (what ? " (" + *what + ")" : "")}});
  }
  const json* calibration = member(p.inference, "calibration");
  if (auto v = number(calibration, "ece")) {
    const auto before = number(calibration, "ece_uncalibrated");
    const auto t = number(calibration, "temperature");
    rows.push_back({"Expected calibration error",
                    {format_number(*v) + (before && t ? " (" + format_number(*before) +
                                                               " before temperature scaling, T = " +
                                                               format_number(*t) + ")"
                                                         : "")}});
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
    return (mean ? format_percent(*mean) : std::string("n/a")) + " over " + count_text(*count);
  };
  const std::string right = confidence_of("correct"), wrong = confidence_of("wrong");
  if (!right.empty() || !wrong.empty()) {
    rows.push_back({"Mean confidence", {(right.empty() ? "" : "right: " + right) +
                                        (!right.empty() && !wrong.empty() ? "; " : "") +
                                        (wrong.empty() ? "" : "wrong: " + wrong)}});
  }
  rows.push_back({"Test data", {text(p.inference, "data").value_or("")}});
  rows.push_back({"Weights", {text(p.test, "checkpoint").value_or("")}});
  if (auto v = number(p.training, "eval_seconds")) rows.push_back({"Evaluation time", {format_duration(*v)}});
  std::ostringstream table;
  key_value_table(table, rows);
  per_class_table(table, p);
  if (!table.str().empty()) out << "<h2>Test results</h2>\n" << table.str();
}

// "a.b.c" rows of a configuration object.
}  // namespace cifar::html
