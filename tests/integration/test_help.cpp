// Every program of build/bin answers --help: exit 0, a usage text on stdout that names the
// program, and nothing on stderr. Programs are found by listing the folder, so a new one is
// covered without changing this test.
#include <filesystem>
#include <set>

#include "support/TestSupport.h"

namespace fs = std::filesystem;
using metasemi::test::runCommand;

BOOST_AUTO_TEST_CASE(every_program_answers_help) {
  const fs::path bin = metasemi::test::harnessEnv("METASEMI_BIN_DIR");
  std::set<std::string> programs;
  for (const auto& e : fs::directory_iterator(bin)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("metasemi-", 0) == 0 && e.is_regular_file() &&
        (fs::status(e.path()).permissions() & fs::perms::owner_exec) != fs::perms::none) {
      programs.insert(name);
    }
  }
  // The demo's programs at least; the test command builds every other one too.
  for (const char* p :
       {"metasemi-prep", "metasemi-train", "metasemi-eval", "metasemi-report", "metasemi-features",
        "metasemi-tsne", "metasemi-bench-meta-step", "metasemi-bench-dist-step"}) {
    BOOST_TEST(programs.count(p) == 1u, p);
  }
  for (const std::string& p : programs) {
    // stderr to a file of its own: help is printed on stdout, and nothing goes wrong.
    const fs::path err = metasemi::test::freshDir("help_" + p) / "stderr";
    const auto r = runCommand("(" + (bin / p).string() + " --help 2> " + err.string() + ")");
    BOOST_TEST(r.exitCode == 0, p << ": " << r.output);
    const std::string shortName = p.substr(std::string("metasemi-").size());
    BOOST_TEST(
        (r.output.find(p) != std::string::npos || r.output.find(shortName) != std::string::npos),
        p << " --help does not name the program: " << r.output);
    BOOST_TEST(r.output.size() > 40u, p << ": " << r.output);
    BOOST_TEST(fs::file_size(err) == 0u, p << " wrote on stderr");
  }
}
