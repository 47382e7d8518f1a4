// The one way distvae writes and reads its JSON files (metrics.jsonl, eval.json, the report's
// inputs): nlohmann::json. Numbers keep the significant digits the files have always carried. JSON
// has no NaN or infinity, so a non-finite number is written as null and named, with its spelling,
// in a "nonfinite" note of the same object (after the fields):
//   {"step": 50, "elbo": null, "kl": null, "lr": 0.001, "nonfinite": {"elbo": "nan", "kl": "inf"}}
// An element of an array of numbers is noted as key[i]: {"h": [0.5, null], "nonfinite":
// {"h[1]": "nan"}}.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace distvae {

using Json = nlohmann::ordered_json;  // objects keep their keys in the order written

inline constexpr const char* kNonfiniteNote = "nonfinite";

// "nan", "inf" or "-inf" for a non-finite v; nullptr for a finite one.
const char* nonfinite_spelling(double v);

// obj[key] = v: an integral |v| < 1e15 as a JSON integer with all its digits, another finite v
// rounded to `digits` significant digits as printf's %.*g does (an integer again if it rounds to
// one), a non-finite v as null named in obj's note. The note stays the object's last key.
// Throws std::invalid_argument naming the key when obj already holds it or key is the note's name.
void put_number(Json& obj, const std::string& key, double v, int digits);
// obj[key] = v for any other value, keeping the note last; the same throws.
void put_value(Json& obj, const std::string& key, Json v);
// obj[key] = [v...], each as put_number writes it (non-finite elements noted as key[i]).
void put_numbers(Json& obj, const std::string& key, const std::vector<double>& v, int digits);

// obj[key] as a double: the number; for a null, the value its note spells (NaN when there is no
// note); nullopt when obj is not an object, lacks the key, or holds something else there.
std::optional<double> get_number(const Json& obj, const std::string& key);

// j on one line without a newline, with a space after each ':' and ',' as the files have always
// had ({"a": 1, "b": [1, 2]}). Invalid UTF-8 in a string is replaced, never written.
std::string dump_line(const Json& j);

// Writes dump_line(j) and a newline to path atomically (path.tmp, then rename). Throws
// std::runtime_error naming the file.
void write_json_file(const std::string& path, const Json& j);

// Parses a whole file as one JSON document. Throws std::runtime_error naming the file (and, for
// invalid JSON, the parser's line and column).
Json read_json_file(const std::string& path);

// A JSON Lines file: each non-empty line that is a JSON object, in order; every other line is
// skipped and described in `errors` as "path:N: what is wrong".
struct JsonLines {
  std::vector<Json> records;
  std::vector<std::string> errors;
};
// Throws std::runtime_error naming the file when it cannot be opened.
JsonLines read_json_lines(const std::string& path);

}  // namespace distvae
