// metrics.jsonl and the JSON helpers behind it and eval.json: every line is valid JSON (read back
// by nlohmann's strict parser and by Python's json with its NaN/Infinity extension refused), a
// non-finite number is null with a note naming the field and its spelling, keys that need escaping
// survive, and numbers keep the 9 significant digits the file has always had.
#include "io/output/metrics_log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/output/json_io.h"

namespace distvae {
namespace {

namespace fs = std::filesystem;

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(DISTVAE_BINARY_DIR) / "test-tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

// Python's json module, told to refuse the NaN / Infinity / -Infinity it accepts by default, on
// every line of path. Returns false when python3 is missing (the caller skips).
bool python_accepts_every_line(const fs::path& path, int* rc) {
  if (std::system("python3 -c '' >/dev/null 2>&1") != 0) return false;
  const std::string cmd =
      "python3 -c 'import json,sys\n"
      "def refuse(c): raise ValueError(\"not JSON: \" + c)\n"
      "for l in open(sys.argv[1]): json.loads(l, parse_constant=refuse)' " +
      path.string();
  *rc = std::system(cmd.c_str());
  return true;
}

TEST(MetricsLog, NonFiniteValuesAreNullWithANote) {
  const fs::path dir = fresh_dir("metrics-log-nonfinite");
  const fs::path path = dir / "metrics.jsonl";
  {
    MetricsLog log(path.string());
    log.write({{"step", 50}, {"elbo", kNan}, {"kl", kInf}, {"prior_t", -kInf}, {"lr", 0.001}});
    log.write({{"step", 100}, {"elbo", -250.5}});
  }
  const auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string& line : lines) {
    Json j;
    EXPECT_NO_THROW(j = Json::parse(line)) << "not JSON: " << line;
    EXPECT_EQ(line.find("NaN"), std::string::npos) << line;
    EXPECT_EQ(line.find("Infinity"), std::string::npos) << line;
    for (const std::string word : {"nan", "inf"})  // only as the note's strings: "nan", "-inf"
      for (size_t at = line.find(word); at != std::string::npos; at = line.find(word, at + 1))
        EXPECT_EQ(line[at + word.size()], '"') << line;
  }
  const Json a = Json::parse(lines[0]);
  EXPECT_EQ(a["step"], 50);
  EXPECT_TRUE(a["elbo"].is_null());
  EXPECT_TRUE(a["kl"].is_null());
  EXPECT_TRUE(a["prior_t"].is_null());
  EXPECT_DOUBLE_EQ(a["lr"].get<double>(), 0.001);
  const Json note = {{"elbo", "nan"}, {"kl", "inf"}, {"prior_t", "-inf"}};
  EXPECT_EQ(a["nonfinite"], note);
  EXPECT_EQ(a.items().begin().key(), "step") << "keys keep the order written";
  EXPECT_EQ(std::prev(a.end()).key(), "nonfinite") << "the note comes after the fields";
  // What the readers get back.
  EXPECT_TRUE(std::isnan(*get_number(a, "elbo")));
  EXPECT_EQ(*get_number(a, "kl"), kInf);
  EXPECT_EQ(*get_number(a, "prior_t"), -kInf);
  EXPECT_FALSE(get_number(a, "missing").has_value());
  const Json b = Json::parse(lines[1]);
  EXPECT_FALSE(b.contains("nonfinite")) << "no note when every value is finite";

  int rc = 0;
  if (!python_accepts_every_line(path, &rc)) GTEST_SKIP() << "SKIP [command:python3]: not found";
  EXPECT_EQ(rc, 0) << "python3's json refused a line of " << path;
}

TEST(MetricsLog, KeysNeedingEscapesSurvive) {
  const fs::path dir = fresh_dir("metrics-log-escape");
  const fs::path path = dir / "metrics.jsonl";
  const std::vector<std::string> keys = {"quote\"d", "back\\slash",      "new\nline", "tab\there",
                                         "bell\x07", "unicode \xc3\xa9", "</script>"};
  std::vector<std::pair<std::string, double>> fields;
  for (size_t i = 0; i < keys.size(); ++i) fields.push_back({keys[i], double(i) + 0.5});
  MetricsLog(path.string()).write(fields);
  const auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u) << "a newline in a key must not split the record";
  const Json j = Json::parse(lines[0]);
  ASSERT_EQ(j.size(), keys.size());
  size_t i = 0;
  for (const auto& [k, v] : j.items()) {
    EXPECT_EQ(k, keys[i]);
    EXPECT_EQ(v.get<double>(), double(i) + 0.5);
    ++i;
  }
  int rc = 0;
  if (!python_accepts_every_line(path, &rc)) GTEST_SKIP() << "SKIP [command:python3]: not found";
  EXPECT_EQ(rc, 0);
}

TEST(MetricsLog, NumbersKeepNineSignificantDigitsAndTheSpacedLayout) {
  const fs::path dir = fresh_dir("metrics-log-digits");
  const fs::path path = dir / "metrics.jsonl";
  const double third = 1.0 / 3.0, big = 123456789.123, tiny = 1.23456789012e-7;
  MetricsLog(path.string())
      .write({{"step", 1200}, {"third", third}, {"big", big}, {"tiny", tiny}, {"neg", -2.0}});
  const auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u);
  // As printf's %.9g writes them (integral values as integers), with ": " and ", " between.
  char want[256];
  std::snprintf(want, sizeof want,
                "{\"step\": 1200, \"third\": %.9g, \"big\": %.9g, \"tiny\": %.9g, \"neg\": -2}",
                third, big, tiny);
  EXPECT_EQ(lines[0], want);
}

TEST(MetricsLog, RepeatedOrReservedKeysAreErrorsNamingTheFile) {
  const fs::path dir = fresh_dir("metrics-log-keys");
  const std::string path = (dir / "metrics.jsonl").string();
  MetricsLog log(path);
  try {
    log.write({{"elbo", 1}, {"elbo", 2}});
    FAIL() << "a repeated key was written";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("elbo"), std::string::npos) << e.what();
  }
  EXPECT_THROW(log.write({{"nonfinite", 1}}), std::invalid_argument);
  EXPECT_TRUE(lines_of(path).empty()) << "nothing of a rejected record is written";
}

TEST(MetricsLog, UnwritablePathIsAnErrorNamingIt) {
  try {
    MetricsLog log("/nonexistent/dir/metrics.jsonl");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/metrics.jsonl"), std::string::npos);
  }
}

TEST(JsonIo, ArraysNoteNonFiniteElementsByIndex) {
  Json j = Json::object();
  put_numbers(j, "hist", {0.25, kNan, 0.75}, 10);
  put_number(j, "kl", kInf, 10);
  put_value(j, "prior", "standard");
  const Json back = Json::parse(dump_line(j));
  EXPECT_EQ(back["hist"][0], 0.25);
  EXPECT_TRUE(back["hist"][1].is_null());
  const Json note = {{"hist[1]", "nan"}, {"kl", "inf"}};
  EXPECT_EQ(back["nonfinite"], note);
  EXPECT_EQ(std::prev(back.end()).key(), "nonfinite");
  EXPECT_EQ(dump_line(back), dump_line(j)) << "reading and writing again changes nothing";
}

TEST(JsonIo, FilesAreWrittenWholeAndBadOnesNamed) {
  const fs::path dir = fresh_dir("json-io-files");
  const Json j = {{"family", "gan"}, {"images", 100}};
  write_json_file((dir / "eval.json").string(), j);
  EXPECT_FALSE(fs::exists(dir / "eval.json.tmp"));
  EXPECT_EQ(read_json_file((dir / "eval.json").string()), j);

  std::ofstream(dir / "old.json") << "{\"elbo\": nan}\n";  // what eval.json used to hold
  try {
    (void)read_json_file((dir / "old.json").string());
    FAIL() << "nan was accepted as JSON";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("old.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)read_json_file((dir / "absent.json").string()), std::runtime_error);

  std::ofstream(dir / "m.jsonl") << "{\"step\": 1}\n\n{\"step\": 2, \"elbo\": -inf}\n[1]\n"
                                 << "{\"step\": 3}\n{\"step\": 4, \"el";  // a torn last line
  const JsonLines lines = read_json_lines((dir / "m.jsonl").string());
  ASSERT_EQ(lines.records.size(), 2u);
  EXPECT_EQ(lines.records[1]["step"], 3);
  ASSERT_EQ(lines.errors.size(), 3u);
  EXPECT_NE(lines.errors[0].find("m.jsonl:3: "), std::string::npos) << lines.errors[0];
  EXPECT_NE(lines.errors[1].find("m.jsonl:4: "), std::string::npos) << lines.errors[1];
  EXPECT_NE(lines.errors[2].find("m.jsonl:6: "), std::string::npos) << lines.errors[2];
}

}  // namespace
}  // namespace distvae
