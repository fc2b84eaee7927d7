// What the benchmark programs share: a steady clock, the median of repeated timings, and
// "--name value" flags read over a table of defaults.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace metasemi::bench {

using Clock = std::chrono::steady_clock;

inline double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// `defaults` overridden by "--name value" pairs of the command line. An unknown flag or a
/// flag without a value prints one line naming it and exits with 2.
inline std::map<std::string, std::string> parseFlags(int argc, char** argv,
                                                     const std::string& program,
                                                     std::map<std::string, std::string> defaults) {
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || defaults.count(key.substr(2)) == 0) {
      std::cerr << program << ": unknown flag " << key << "\n";
      std::exit(2);
    }
    if (i + 1 >= argc) {
      std::cerr << program << ": " << key << " needs a value\n";
      std::exit(2);
    }
    defaults[key.substr(2)] = argv[i + 1];
  }
  return defaults;
}

}  // namespace metasemi::bench
