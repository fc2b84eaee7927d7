// What every test links: the Boost.Test main with a global fixture that starts MPI when the test
// runs under mpirun, collective verdicts for MPI tests, and helpers for files and programs.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "metasemi/comm/Communicator.h"
#include "metasemi/core/Error.h"

namespace metasemi::test {

/// This process's MPI environment (MPI started only under a launcher), for the whole run.
comm::Environment& environment();

/// This process's communicator (MPI under mpirun, serial otherwise).
comm::Communicator& comm();

/// Collective: true when `localOk` holds on every rank.
bool allRanks(bool localOk);

/// Collective: true when `bytes` bytes at `data` are identical on every rank (hash compared
/// with rank 0's).
bool sameOnAllRanks(const void* data, std::size_t bytes);

/// A new empty folder for this test under METASEMI_TEST_TMP (rank 0 creates, all ranks get the
/// same path; collective).
std::filesystem::path freshDir(const std::string& name);

/// The whole content of the file `p` (empty when it cannot be read).
std::vector<std::uint8_t> readBytes(const std::filesystem::path& p);

/// Path of a project executable in build/bin.
std::filesystem::path binary(const std::string& name);

/// Path below the source tree.
std::filesystem::path sourcePath(const std::string& relative);

/// Result of running a program: exit code and everything it printed (stdout + stderr).
struct RunResult {
  int exitCode = -1;
  std::string output;
};

/// Runs `command` through /bin/sh and captures its output.
RunResult runCommand(const std::string& command);

/// Value of an environment variable the test harness sets; fails the test when missing.
std::string harnessEnv(const char* name);

/// The python with TensorBoard's reader, safetensors and torch (METASEMI_TEST_PYTHON, made by
/// env/test-venv.sh); fails the test with what to run when it is not set.
std::string testPython();

/// Runs `script` (a path below the source tree) with testPython() and `args`.
RunResult runPythonCheck(const std::string& script, const std::string& args);

/// The message of the `E` that `f` throws, to compare with the expected text. When `f` throws
/// nothing the test fails and the result is "(no exception)"; other exception types propagate.
template <typename E = core::IoError>
std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  BOOST_ERROR("expected an exception, none was thrown");
  return "(no exception)";
}

}  // namespace metasemi::test

/// Collective check for MPI tests: every rank contributes its verdict and every rank records
/// the same pass/fail, so no rank stops early and leaves the other in a collective.
#define MS_COLLECTIVE_CHECK(cond)                                         \
  do {                                                                    \
    const bool msLocalOk_ = static_cast<bool>(cond);                      \
    BOOST_CHECK_MESSAGE(::metasemi::test::allRanks(msLocalOk_),           \
                        "collective check failed: " #cond " (this rank: " \
                            << (msLocalOk_ ? "ok" : "FAILED") << ")");    \
  } while (false)

/// As MS_COLLECTIVE_CHECK, but ends the test case on every rank when it fails.
#define MS_COLLECTIVE_REQUIRE(cond)                                               \
  do {                                                                            \
    const bool msLocalOk_ = static_cast<bool>(cond);                              \
    BOOST_REQUIRE_MESSAGE(::metasemi::test::allRanks(msLocalOk_),                 \
                          "collective requirement failed: " #cond " (this rank: " \
                              << (msLocalOk_ ? "ok" : "FAILED") << ")");          \
  } while (false)
