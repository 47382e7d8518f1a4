// JSON through nlohmann::json: numbers rounded as the files carry them, non-finite ones as null
// with a note, one-line output, atomic files, and readers that name the file.
#include "io/output/json_io.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "io/file/atomic_file.h"

namespace distvae {

namespace {

// v rounded to `digits` significant digits, as printf's %.*g prints it.
double round_digits(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return std::strtod(buf, nullptr);
}

bool integral(double v) {
  return v == std::floor(v) && std::fabs(v) < 1e15;
}

// An integral value whole (as printf's %.0f), any other rounded; what rounds to an integer is
// written as one (123456789.123 to 9 digits: 123456789, not 123456789.0).
Json number(double v, int digits) {
  if (!std::isfinite(v)) return nullptr;
  if (integral(v)) return static_cast<int64_t>(v);
  const double r = round_digits(v, digits);
  if (integral(r)) return static_cast<int64_t>(r);
  return r;
}

// Runs put(obj) with obj's note taken out, then puts the note back last when it is not empty.
template <class Put>
void with_note_last(Json& obj, const std::string& key, Put put) {
  if (!obj.is_object()) throw std::invalid_argument(key + ": not put into a JSON object");
  if (key == kNonfiniteNote)
    throw std::invalid_argument(key + ": a field may not take the name of the non-finite note");
  if (obj.contains(key)) throw std::invalid_argument(key + ": the field is already present");
  Json note = Json::object();
  if (auto it = obj.find(kNonfiniteNote); it != obj.end()) {
    note = std::move(*it);
    obj.erase(it);
  }
  put(note);
  if (!note.empty()) obj[kNonfiniteNote] = std::move(note);
}

}  // namespace

const char* nonfinite_spelling(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return nullptr;
}

void put_number(Json& obj, const std::string& key, double v, int digits) {
  with_note_last(obj, key, [&](Json& note) {
    obj[key] = number(v, digits);
    if (const char* s = nonfinite_spelling(v)) note[key] = s;
  });
}

void put_value(Json& obj, const std::string& key, Json v) {
  with_note_last(obj, key, [&](Json&) { obj[key] = std::move(v); });
}

void put_numbers(Json& obj, const std::string& key, const std::vector<double>& v, int digits) {
  with_note_last(obj, key, [&](Json& note) {
    Json a = Json::array();
    for (size_t i = 0; i < v.size(); ++i) {
      a.push_back(number(v[i], digits));
      if (const char* s = nonfinite_spelling(v[i])) note[key + "[" + std::to_string(i) + "]"] = s;
    }
    obj[key] = std::move(a);
  });
}

std::optional<double> get_number(const Json& obj, const std::string& key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (!it->is_null()) return std::nullopt;
  const auto note = obj.find(kNonfiniteNote);
  if (note != obj.end() && note->is_object()) {
    const auto s = note->find(key);
    if (s != note->end() && *s == "inf") return std::numeric_limits<double>::infinity();
    if (s != note->end() && *s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  return std::nan("");
}

std::string dump_line(const Json& j) {
  // Indented output has ": " and ",\n"; its only raw newlines are between tokens (a newline in a
  // string is escaped), so dropping them, and keeping a space after a comma, gives one line.
  const std::string s = j.dump(0, ' ', false, Json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c != '\n')
      out += c;
    else if (!out.empty() && out.back() == ',')
      out += ' ';
  }
  return out;
}

void write_json_file(const std::string& path, const Json& j) {
  replace_file(path, dump_line(j) + '\n');
}

Json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open for reading");
  std::stringstream s;
  s << f.rdbuf();
  try {
    return Json::parse(s.str());
  } catch (const Json::parse_error& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
}

JsonLines read_json_lines(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open for reading");
  JsonLines out;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    try {
      Json j = Json::parse(line);
      if (j.is_object())
        out.records.push_back(std::move(j));
      else
        out.errors.push_back(where + "a JSON " + j.type_name() + ", not an object");
    } catch (const Json::parse_error& e) {
      out.errors.push_back(where + "not valid JSON: " + e.what());
    }
  }
  return out;
}

}  // namespace distvae
