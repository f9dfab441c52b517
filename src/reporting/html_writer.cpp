#include "reporting/html_writer.h"

#include <cmath>
#include <iomanip>
#include <locale>

#include "reporting/format.h"
#include "reporting/html_report.h"

namespace cifar::html {
namespace {

// A configuration value longer than this many list entries is summarised:
// the table is the run's record, but a list of thousands says nothing.
constexpr size_t kMaxListedValues = 20;

}  // namespace

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

std::string list_text(const std::vector<double>& values) {
  std::string s;
  for (double v : values) s += (s.empty() ? "" : ", ") + format_number(v);
  return s;
}

Cell num_cell(std::string text) { return {std::move(text), true}; }

// Two columns, a label and its value, every value left-aligned (a mix of
// numbers and words in one column reads best so); rows with an empty value
// are left out unless `keep_empty` (the configuration, where "" is a
// setting too).
void key_value_table(std::ostringstream& out, const std::vector<std::pair<std::string, std::string>>& rows,
                     bool keep_empty) {
  std::ostringstream body;
  for (const auto& [label, value] : rows) {
    if (value.empty() && !keep_empty) continue;
    body << "<tr><th>" << html_escape(label) << "</th><td>" << html_escape(value) << "</td></tr>\n";
  }
  if (!body.str().empty()) out << "<table>\n" << body.str() << "</table>\n";
}

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

void card(std::ostringstream& out, const std::string& label, const std::string& value, const std::string& note) {
  out << "<div class=\"card\"><div class=\"label\">" << html_escape(label) << "</div><div class=\"value\">"
      << html_escape(value) << "</div>";
  if (!note.empty()) out << "<div class=\"note\">" << html_escape(note) << "</div>";
  out << "</div>\n";
}

}  // namespace cifar::html
