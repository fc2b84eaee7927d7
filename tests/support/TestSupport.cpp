#define BOOST_TEST_MODULE metasemi
#include "support/TestSupport.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>

#include "metasemi/core/Log.h"
#include "metasemi/io/Hdf5.h"

namespace metasemi::test {
namespace {

struct Runtime {
  std::unique_ptr<comm::Environment> env;
  std::unique_ptr<comm::Communicator> comm;
};

Runtime& runtime() {
  static Runtime r;
  return r;
}

std::uint64_t fnv1a(const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

// Starts MPI (only under a launcher) before the first test and ends it after the last.
struct GlobalEnvironment {
  GlobalEnvironment() {
    auto& suite = boost::unit_test::framework::master_test_suite();
    int argc = suite.argc;
    char** argv = suite.argv;
    runtime().env = std::make_unique<comm::Environment>(argc, argv);
    runtime().comm = comm::makeHostCommunicator(*runtime().env);
    core::setupLogging(runtime().comm->rank(), runtime().comm->size(), "warn");
    io::silenceHdf5Errors();
  }
  ~GlobalEnvironment() {
    runtime().comm.reset();
    runtime().env.reset();
  }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(GlobalEnvironment);

comm::Environment& environment() { return *runtime().env; }

comm::Communicator& comm() { return *runtime().comm; }

bool allRanks(bool localOk) {
  std::int64_t v = localOk ? 1 : 0;
  comm().allreduceMin(&v, 1);
  return v == 1;
}

bool sameOnAllRanks(const void* data, std::size_t bytes) {
  std::uint64_t mine = fnv1a(data, bytes);
  std::uint64_t root = mine;
  comm().broadcast(&root, sizeof(root), 0);
  std::int64_t size = static_cast<std::int64_t>(bytes);
  std::int64_t minSize = size;
  comm().allreduceMin(&minSize, 1);
  return allRanks(root == mine && minSize == size);
}

std::string harnessEnv(const char* name) {
  const char* v = std::getenv(name);
  BOOST_TEST_REQUIRE(v != nullptr,
                     "environment variable " << name << " is not set (run through ctest)");
  return v;
}

std::string testPython() {
  const std::string python = harnessEnv("METASEMI_TEST_PYTHON");
  BOOST_TEST_REQUIRE(!python.empty(),
                     "no test python: run `bash env/test-venv.sh` and configure with "
                     "-DMETASEMI_TEST_PYTHON=<the path it prints> (env/run-tests.sh does both)");
  return python;
}

RunResult runPythonCheck(const std::string& script, const std::string& args) {
  return runCommand(testPython() + " " + sourcePath(script).string() + " " + args);
}

std::filesystem::path freshDir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(harnessEnv("METASEMI_TEST_TMP")) / name;
  if (comm().isRoot()) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  comm().barrier();
  return dir;
}

std::vector<std::uint8_t> readBytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path binary(const std::string& name) {
  return std::filesystem::path(harnessEnv("METASEMI_BIN_DIR")) / name;
}

std::filesystem::path sourcePath(const std::string& relative) {
  return std::filesystem::path(harnessEnv("METASEMI_SOURCE_DIR")) / relative;
}

RunResult runCommand(const std::string& command) {
  RunResult r;
  const std::string full = command + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(full.c_str(), "r"), pclose);
  BOOST_TEST_REQUIRE(static_cast<bool>(pipe), "cannot run: " << command);
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0)
    r.output.append(buf.data(), n);
  const int status = pclose(pipe.release());
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace metasemi::test
