// The pieces the HTML report is built from: values read from the run's
// JSON without throwing (a missing or mistyped key is just absent), those
// values as text for people, and escaped tables and cards.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace cifar::html {

using nlohmann::json;

// A present, non-null member of an object; null otherwise.
const json* member(const json* obj, const char* key);
std::optional<double> number(const json* obj, const char* key);
std::optional<int64_t> integer(const json* obj, const char* key);
std::optional<std::string> text(const json* obj, const char* key);
std::optional<bool> flag(const json* obj, const char* key);
// A list of numbers (non-numbers skipped).
std::vector<double> numbers(const json* obj, const char* key);
// A configuration value as the table shows it (long lists summarised).
std::string config_value_text(const json& v);

// A learning rate as one would write it ("0.2", "0.0668", "1e-06").
std::string rate_text(double v);
// "10,000".
std::string count_text(int64_t n);
std::string list_text(const std::vector<double>& values);

struct Cell {
  std::string text;
  bool numeric = false;
};
Cell num_cell(std::string text);
struct Row {
  std::vector<Cell> cells;
  bool best = false;
};

// Two columns, a label and its value; rows with an empty value are left
// out unless `keep_empty` (the configuration, where "" is a setting too).
void key_value_table(std::ostringstream& out, const std::vector<std::pair<std::string, std::string>>& rows,
                     bool keep_empty = false);
void grid_table(std::ostringstream& out, const std::vector<std::string>& header, const std::vector<Row>& rows);
void card(std::ostringstream& out, const std::string& label, const std::string& value, const std::string& note = {});

}  // namespace cifar::html
