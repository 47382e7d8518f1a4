// libFuzzer target: launch/config (parse_config) on arbitrary text. Every input must either give
// a Config that passes its own rules and survives a dump/parse round trip, or throw ConfigError;
// anything else (a crash, a sanitizer report, a YAML or standard exception escaping) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "launch/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  distvae::Config c;
  try {
    c = distvae::parse_config(text, "fuzz.yaml");
  } catch (const distvae::ConfigError&) {
    return 0;  // the documented way to reject a config
  }
  // An accepted config dumps to YAML that parses back to the same resolved config.
  const std::string dumped = distvae::dump_config(c);
  if (distvae::dump_config(distvae::parse_config(dumped, "dumped.yaml")) != dumped) std::abort();
  return 0;
}
