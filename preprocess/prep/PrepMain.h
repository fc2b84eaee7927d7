// metasemi-prep as a function, so tests drive it without a shell.
#pragma once

namespace metasemi::prep {

/// Runs `metasemi-prep <subcommand> [options]` and returns the exit code (core::ExitCode).
/// Errors are caught here: one line `metasemi-prep: <message>` (with `[rank r]` under MPI).
int prepMain(int argc, char** argv);

}  // namespace metasemi::prep
