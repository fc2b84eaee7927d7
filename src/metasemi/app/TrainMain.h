// The trainer program as a function, so tests drive it without a shell.
#pragma once

namespace metasemi::app {

/// Runs `metasemi-train` with the given command line and returns its exit code (see
/// core::ExitCode). Errors are caught here: one `[rank r]` line, then every rank ends.
int trainMain(int argc, char** argv);

}  // namespace metasemi::app
