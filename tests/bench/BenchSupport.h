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

/// When the command line asks for help (--help or -h): prints `usage` and exits with 0.
inline void answerHelp(int argc, char** argv, const std::string& usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      std::exit(0);
    }
  }
}

/// `defaults` overridden by "--name value" pairs of the command line. `about` says what the
/// program measures; --help prints it with every flag and its default and exits with 0. An
/// unknown flag or a flag without a value prints one line naming it and exits with 2.
inline std::map<std::string, std::string> parseFlags(int argc, char** argv,
                                                     const std::string& program,
                                                     std::map<std::string, std::string> defaults,
                                                     const std::string& about = "") {
  std::string usage = "Usage: " + program + " [--flag value]...\n";
  if (!about.empty()) usage += about + "\n";
  usage += "Flags (default):\n";
  for (const auto& [name, value] : defaults) usage += "  --" + name + " (" + value + ")\n";
  answerHelp(argc, argv, usage);
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
