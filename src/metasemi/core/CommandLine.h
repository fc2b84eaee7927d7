// What the postprocessing programs share around their work: reading the command line (with
// --help) and ending with one line and the exit code of the error that stopped them.
#pragma once

#include <boost/program_options.hpp>

#include <exception>
#include <functional>
#include <string>

namespace metasemi::post {

/// Parses `argv` into `values` against `options` (the ones --help lists, among them "help") and,
/// when given, `hidden` options fed by the `positional` arguments. Returns false when --help was
/// asked for, after printing `options` on stdout if `printHelp`. Throws core::ConfigError with
/// boost's one-line reason for an unknown flag or a bad value.
bool parseCommandLine(
    int argc, char** argv, const boost::program_options::options_description& options,
    boost::program_options::variables_map& values, bool printHelp = true,
    const boost::program_options::options_description* hidden = nullptr,
    const boost::program_options::positional_options_description* positional = nullptr);

/// Prints "<program>: <what>" on stderr and returns core::exitCodeFor(error).
int reportError(const std::string& program, const std::exception& error);

/// Runs `body` (a program's main) and returns its exit code; an exception ends it through
/// reportError().
int runProgram(const std::string& program, const std::function<int()>& body);

}  // namespace metasemi::post
