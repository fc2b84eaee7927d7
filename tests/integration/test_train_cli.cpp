// The metasemi-train executable: --version reports the libraries, bad flags exit with 2 and one
// line, --dry-run prints settings that read back.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "metasemi/BuildConfig.h"
#include "support/TestSupport.h"

using metasemi::test::binary;
using metasemi::test::runCommand;

BOOST_AUTO_TEST_CASE(version_lists_the_libraries) {
  const auto r = runCommand(binary("metasemi-train").string() + " --version");
  BOOST_TEST(r.exitCode == 0);
  for (const char* what : {"LibTorch: ", "MPI: ", "HDF5: 1.", "Boost: 1.", "NCCL: "}) {
    BOOST_TEST(r.output.find(what) != std::string::npos, what << " in\n" << r.output);
  }
  if (metasemi::build::kHaveNccl) {
    // The runtime version comes from ncclGetVersion in the linked library.
    BOOST_TEST(r.output.find("NCCL: 2.") != std::string::npos, r.output);
  } else {
    BOOST_TEST(r.output.find("NCCL: not built") != std::string::npos, r.output);
  }
}

BOOST_AUTO_TEST_CASE(bad_flag_is_one_line_and_exit_2) {
  const auto r = runCommand(binary("metasemi-train").string() + " --batch-size -3");
  BOOST_TEST(r.exitCode == 2);
  BOOST_TEST(r.output == "metasemi-train: --batch-size must be positive, got -3\n");
  const auto u = runCommand(binary("metasemi-train").string() + " --bogus");
  BOOST_TEST(u.exitCode == 2);
  BOOST_TEST(u.output.find("bogus") != std::string::npos);
  BOOST_TEST(std::count(u.output.begin(), u.output.end(), '\n') == 1);
}

BOOST_AUTO_TEST_CASE(dry_run_prints_readable_settings) {
  const auto dir = metasemi::test::freshDir("train_cli_dry_run");
  const auto r = runCommand(binary("metasemi-train").string() +
                            " --dataset svhn --mix-up --alpha 0.1 --dry-run");
  BOOST_TEST(r.exitCode == 0);
  BOOST_TEST(r.output.find("dataset = svhn\n") != std::string::npos);
  BOOST_TEST(r.output.find("alpha = 0.1\n") != std::string::npos);
  {
    std::ofstream out(dir / "resolved.cfg");
    out << r.output;
  }
  const auto again = runCommand(binary("metasemi-train").string() + " --config " +
                                (dir / "resolved.cfg").string() + " --dry-run");
  BOOST_TEST(again.exitCode == 0);
  BOOST_TEST(again.output == r.output);
}

BOOST_AUTO_TEST_CASE(dry_run_under_mpirun_prints_once) {
  const auto r =
      runCommand("mpirun -np 2 " + binary("metasemi-train").string() + " --dry-run --seed 5");
  BOOST_TEST(r.exitCode == 0, r.output);
  const std::string key = "seed = 5\n";
  const auto first = r.output.find(key);
  BOOST_TEST(first != std::string::npos);
  BOOST_TEST(r.output.find(key, first + 1) == std::string::npos, r.output);
}

// Without a CUDA device, --gpu is refused by every program with one line naming the flag and
// exit 2, before any file is read or written.
BOOST_AUTO_TEST_CASE(gpu_without_a_device_is_one_line_and_exit_2) {
  if (torch::cuda::is_available()) return;  // a GPU machine: the gpu tests cover --gpu
  const auto dir = metasemi::test::freshDir("train_cli_gpu");
  const std::string absent = (dir / "absent").string();
  for (const std::string command :
       {"metasemi-train --gpu --save-path " + absent,
        "metasemi-eval --gpu --checkpoint " + absent + " --data-path " + absent,
        "metasemi-features --gpu --checkpoint " + absent + " --output " + absent,
        "metasemi-step-check --gpu --checkpoint " + absent + " --batch " + absent + " --output " +
            absent}) {
    const std::string program = command.substr(0, command.find(' '));
    const auto r = runCommand(binary(program).string() + command.substr(program.size()));
    BOOST_TEST(r.exitCode == 2, command << ": " << r.output);
    BOOST_TEST(r.output.find("--gpu") != std::string::npos, command << ": " << r.output);
    BOOST_TEST(std::count(r.output.begin(), r.output.end(), '\n') == 1, r.output);
    BOOST_TEST(!std::filesystem::exists(absent));
  }
}
