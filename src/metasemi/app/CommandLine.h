// What the programs share around their work: reading the command line (with --help) and ending
// with one line and the exit code of the error that stopped them. The MPI programs add
// app::MpiProgram on top.
#pragma once

#include <boost/program_options.hpp>

#include <exception>
#include <functional>
#include <string>

namespace metasemi::app {

/// Parses `argv` into `values` against `options` (the ones --help lists, among them "help") and,
/// when given, `hidden` options fed by the `positional` arguments. Returns false when --help was
/// asked for, after printing `options` on stdout if `printHelp`. Throws ConfigError with
/// boost's one-line reason for an unknown flag or a bad value.
bool parseCommandLine(
    int argc, char** argv, const boost::program_options::options_description& options,
    boost::program_options::variables_map& values, bool printHelp = true,
    const boost::program_options::options_description* hidden = nullptr,
    const boost::program_options::positional_options_description* positional = nullptr);

/// Prints "<program>: <what>" on stderr and returns exitCodeFor(error).
int reportError(const std::string& program, const std::exception& error);

/// Runs `body` (a program's main) and returns its exit code; an exception ends it through
/// reportError().
int runProgram(const std::string& program, const std::function<int()>& body);

/// Keeps activation-sized allocations in the heap. A training or evaluation step allocates and
/// frees the same large tensors each time; above glibc's default mmap threshold each is a fresh
/// mapping, paid again in page faults and kernel zeroing (small models stepped 5x slower, more
/// than half the time in system calls). 32 MiB is the largest threshold glibc accepts. Call it
/// first thing in main().
void keepLargeAllocationsInHeap();

}  // namespace metasemi::app
