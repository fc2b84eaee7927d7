// Error types and check macros. The library throws; executables map the error kind to an exit
// code (see ExitCode) and print one line.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace metasemi::core {

/// Root of every error the library throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A wrong flag, value or combination of settings (exit code 2).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Unreadable, missing, inconsistent or unwritable files (exit code 3).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A failed MPI/NCCL/CUDA call or a peer that went away (exit code 4).
class CommError : public Error {
 public:
  using Error::Error;
};

/// Training diverged: a loss or gradient is not finite (exit code 5).
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// Exit codes of every executable of the project.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitConfig = 2,
  kExitIo = 3,
  kExitComm = 4,
  kExitNumerical = 5,
  /// Preempted by SIGUSR1/SIGTERM: a checkpoint was written and the job should be requeued.
  kExitPreempted = 75,
};

/// The exit code for an exception caught at the top of a program.
int exitCodeFor(const std::exception& e) noexcept;

namespace detail {
[[noreturn]] void failCheck(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace metasemi::core

/// Throws `Type` with a formatted message meant for the user (no source location).
#define MS_THROW(Type, ...) throw Type(fmt::format(__VA_ARGS__))

/// Throws `Type` with a formatted user message when `cond` is false.
#define MS_REQUIRE(cond, Type, ...) \
  do {                              \
    if (!(cond)) {                  \
      MS_THROW(Type, __VA_ARGS__);  \
    }                               \
  } while (false)

/// Internal invariant: throws core::Error with the expression text, file and line.
#define MS_CHECK(cond, ...)                                                                     \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      ::metasemi::core::detail::failCheck(#cond, __FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
    }                                                                                           \
  } while (false)
