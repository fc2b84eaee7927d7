// Checks on paths given by the user, as one-line input errors (core::IoError) that name the
// path and say what is wrong with it: missing, a folder where a file is expected, unreadable
// (permission, a loop of symbolic links), ...
#pragma once

#include <exception>
#include <filesystem>
#include <string>

namespace metasemi::core {

/// What is wrong with `path` as an input file: "" when it is (or links to) a regular file,
/// else "no such file", "is a folder, expected a file", "cannot access: <reason>", ...
std::string fileProblem(const std::filesystem::path& path);

/// Throws IoError unless `path` is (or links to) a regular file. `what` ("--checkpoint", "")
/// goes before the path in the message.
void requireFile(const std::filesystem::path& path, const std::string& what = "");

/// Throws IoError unless `path` is (or links to) a folder.
void requireFolder(const std::filesystem::path& path, const std::string& what = "");

/// The one line to print for an error caught at the top of a program: std::filesystem errors
/// become "<path>: <reason>", everything else is what().
std::string describeError(const std::exception& e);

}  // namespace metasemi::core
