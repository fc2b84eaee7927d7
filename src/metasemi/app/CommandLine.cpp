#include "metasemi/app/CommandLine.h"

#include <malloc.h>

#include <iostream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"

namespace metasemi::app {

namespace po = boost::program_options;

bool parseCommandLine(int argc, char** argv, const po::options_description& options,
                      po::variables_map& values, bool printHelp,
                      const po::options_description* hidden,
                      const po::positional_options_description* positional) {
  po::options_description all;
  all.add(options);
  if (hidden) all.add(*hidden);
  po::command_line_parser parser(argc, argv);
  parser.options(all);
  if (positional) parser.positional(*positional);
  try {
    po::store(parser.run(), values);
    po::notify(values);
  } catch (const po::error& e) {
    MS_THROW(core::ConfigError, "{} (see --help)", e.what());
  }
  if (values.count("help") == 0) return true;
  if (printHelp) std::cout << options << "\n";
  return false;
}

int reportError(const std::string& program, const std::exception& error) {
  std::cerr << program << ": " << core::describeError(error) << "\n";
  return core::exitCodeFor(error);
}

int runProgram(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return reportError(program, e);
  }
}

void keepLargeAllocationsInHeap() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace metasemi::app
