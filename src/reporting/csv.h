// CSV text as our logs write and read it: fields quoted only when they must
// be (RFC 4180), numbers as Python writes them, rows appended whole.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cifar {

// Python's str(float), which Keras' CSVLogger writes: the shortest digits
// that read back as exactly `v` (so a CSV keeps every metric bit for bit),
// in fixed notation with at least one decimal ("0.0001", "2.0") when the
// decimal exponent is -4 to 15, else scientific with a signed exponent of
// two digits or more ("1e-05", "1.5e+16"); "nan", "inf" and "-inf" when
// not finite.
std::string csv_number(double v);

// `field`, quoted with inner quotes doubled when it holds `sep`, a quote or
// a line break (Python's csv module does the same).
std::string csv_field(std::string_view field, char sep = ',');

// The fields quoted as needed, joined by `sep` and ended by "\n".
std::string csv_line(const std::vector<std::string>& fields, char sep = ',');

struct CsvRecord {
  std::vector<std::string> fields;
  size_t begin = 0;         // byte span of the record in the text,
  size_t end = 0;           // its line break included
  bool terminated = false;  // false: the text ends mid-record (a killed writer)
};

// Splits CSV text into records: quoted fields, doubled quotes, LF or CRLF.
std::vector<CsvRecord> parse_csv(std::string_view text, char sep = ',');

// Appends `bytes` to `path`, creating it if absent, and closes it: the rows
// are then with the OS (one write(2) unless it writes short), so a killed
// run keeps every row it finished. Throws UserError naming the file if it
// cannot.
void append_to_file(const std::filesystem::path& path, std::string_view bytes);

}  // namespace cifar
