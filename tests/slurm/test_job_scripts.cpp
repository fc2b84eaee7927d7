// The job scripts and configs of jobs/ without a cluster: every config resolves with
// `metasemi-train --dry-run` to the reference's settings, every script parses, submit-study.sh's
// --dry-run prints the chain of sbatch commands a GPU study needs, and bad settings get one line
// and exit code 2.
#include <fmt/format.h>

#include <map>
#include <sstream>

#include "support/TestSupport.h"

namespace fs = std::filesystem;
using metasemi::test::runCommand;
using metasemi::test::sourcePath;

namespace {

using Settings = std::map<std::string, std::string>;

// The settings metasemi-train resolves from `config`.
Settings resolve(const fs::path& config) {
  const auto r = runCommand(metasemi::test::binary("metasemi-train").string() + " --config " +
                            config.string() + " --dry-run");
  BOOST_TEST_REQUIRE(r.exitCode == 0, config << ": " << r.output);
  Settings s;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find(" = ");
    if (eq != std::string::npos) s[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return s;
}

double number(const Settings& s, const std::string& key) { return std::stod(s.at(key)); }

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::size_t countOf(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (auto pos = s.find(part); pos != std::string::npos; pos = s.find(part, pos + 1)) ++n;
  return n;
}

// Runs a job script or submit-study.sh outside Slurm with `env` before it.
metasemi::test::RunResult script(const std::string& env, const std::string& name,
                                 const std::string& args = "") {
  return runCommand(env + " bash " + sourcePath("jobs/" + name).string() + " " + args);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_config_resolves) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator(sourcePath("jobs/configs"))) {
    if (entry.path().extension() != ".cfg") continue;
    BOOST_TEST_CONTEXT(entry.path()) { resolve(entry.path()); }
    ++n;
  }
  BOOST_TEST(n >= 16u);
}

// reference-spec 3.1: the README's commands, and the baselines and ablations of the slides.
BOOST_AUTO_TEST_CASE(small_dataset_configs_hold_the_reference_settings) {
  struct Experiment {
    std::string name, dataset;
    int numLabel, seed;
    double alpha, weightDecay;
  };
  const std::vector<Experiment> experiments = {
      {"svhn-1000", "svhn", 1000, 7788, 0.1, 5e-5},
      {"cifar10-4000", "cifar10", 4000, 8469, 1.0, 1e-4},
      {"cifar100-10000", "cifar100", 10000, 7788, 1.0, 1e-4}};
  // suffix -> method, mix-up
  const std::vector<std::tuple<std::string, std::string, std::string>> variants = {
      {"", "meta", "true"},
      {"-baseline", "baseline", "false"},
      {"-mixup", "baseline", "true"},
      {"-meta-only", "meta", "false"}};
  for (const auto& e : experiments) {
    for (const auto& [suffix, method, mixUp] : variants) {
      const auto s = resolve(sourcePath("jobs/configs/" + e.name + suffix + ".cfg"));
      BOOST_TEST_CONTEXT(e.name + suffix) {
        BOOST_TEST(s.at("dataset") == e.dataset);
        BOOST_TEST(number(s, "num-label") == e.numLabel);
        BOOST_TEST(number(s, "seed") == e.seed);
        BOOST_TEST(s.at("method") == method);
        BOOST_TEST(s.at("mix-up") == mixUp);
        BOOST_TEST(s.at("architecture") == "convlarge");
        BOOST_TEST(number(s, "width") == 1.0);
        BOOST_TEST(number(s, "weight-decay") == e.weightDecay);
        if (mixUp == "true") BOOST_TEST(number(s, "alpha") == e.alpha);
        BOOST_TEST(number(s, "weight") == 1.0);
        BOOST_TEST(number(s, "epsilon") == 0.01);
        BOOST_TEST(number(s, "batch-size") == 128);
        BOOST_TEST(number(s, "total-steps") == 400000);
        BOOST_TEST(number(s, "lr") == 0.1);
        BOOST_TEST(number(s, "warmup") == 4000);
        BOOST_TEST(s.at("milestones") == "[300000, 350000]");
        BOOST_TEST(number(s, "momentum") == 0.9);
        BOOST_TEST(number(s, "test-freq") == 400);
        BOOST_TEST(s.at("lr-schedule") == "step");
      }
    }
  }
}

// reference-spec 6: train_meta_imagenet.py on 8 GPUs x 64 and train_imagenet.py on 4 GPUs x 128.
BOOST_AUTO_TEST_CASE(imagenet_configs_hold_the_reference_settings) {
  const auto meta = resolve(sourcePath("jobs/configs/imagenet-10pct.cfg"));
  const auto base = resolve(sourcePath("jobs/configs/imagenet-10pct-baseline.cfg"));
  for (const auto* s : {&meta, &base}) {
    BOOST_TEST(s->at("dataset") == "imagenet");
    BOOST_TEST(s->at("architecture") == "resnet18");
    BOOST_TEST(s->at("lr-schedule") == "cosine");
    BOOST_TEST(number(*s, "lr") == 0.1);
    BOOST_TEST(number(*s, "weight-decay") == 1e-4);
    BOOST_TEST(number(*s, "momentum") == 0.9);
    BOOST_TEST(number(*s, "warmup") == 5);
    BOOST_TEST(number(*s, "epochs") == 600);
    BOOST_TEST(number(*s, "imsize") == 256);
    BOOST_TEST(number(*s, "imcrop") == 224);
    BOOST_TEST(number(*s, "eval-batch-size") == 50);
  }
  BOOST_TEST(meta.at("method") == "meta");
  BOOST_TEST(meta.at("mix-up") == "true");
  BOOST_TEST(meta.at("weight-ramp") == "false");
  BOOST_TEST(number(meta, "alpha") == 1.0);
  BOOST_TEST(number(meta, "epsilon") == 0.01);
  BOOST_TEST(number(meta, "batch-size") == 64);
  BOOST_TEST(base.at("method") == "baseline");
  BOOST_TEST(base.at("mix-up") == "false");
  BOOST_TEST(number(base, "batch-size") == 128);
}

BOOST_AUTO_TEST_CASE(every_script_parses) {
  std::size_t n = 0;
  for (const auto& entry : fs::directory_iterator(sourcePath("jobs"))) {
    const auto ext = entry.path().extension();
    if (ext != ".sh" && ext != ".sbatch") continue;
    const auto r = runCommand("bash -n " + entry.path().string());
    BOOST_TEST(r.exitCode == 0, entry.path() << ": " << r.output);
    ++n;
  }
  BOOST_TEST(n >= 6u);
}

BOOST_AUTO_TEST_CASE(submit_study_dry_run_prints_the_chain) {
  const auto r =
      script("METASEMI_MODULES='openmpi/4.1 hdf5' METASEMI_ACCOUNT=proj", "submit-study.sh",
             "--experiment cifar10-4000 --methods meta,baseline --seeds 8469,1,2 "
             "--nodes 2 --gpus-per-node 4 --partition gpu --time 2-00:00:00 "
             "--signal-seconds 600 --sbatch-args '--qos=high --mail-type=END' "
             "--out /scratch/s --data-root /scratch/d --dry-run");
  BOOST_TEST_REQUIRE(r.exitCode == 0, r.output);
  const std::string& o = r.output;
  // prep, one array per method, eval, report; nothing submitted.
  BOOST_TEST(countOf(o, " sbatch --parsable --export=ALL --partition=gpu --account=proj ") == 5u,
             o);
  BOOST_TEST(contains(o, "dry run: nothing submitted"), o);
  BOOST_TEST(countOf(o, "--qos=high --mail-type=END ") == 5u, o);
  BOOST_TEST(countOf(o, "METASEMI_MODULES=openmpi/4.1\\ hdf5 ") == 5u, o);
  BOOST_TEST(contains(o, "PREP_OUT=/scratch/d/cifar10 "), o);
  BOOST_TEST(contains(o, "PREP_SEEDS=8469\\,1\\,2 "), o);
  for (const char* cfg : {"cifar10-4000.cfg", "cifar10-4000-baseline.cfg"}) {
    BOOST_TEST(contains(o, std::string("TRAIN_CONFIG=") + sourcePath("jobs/configs").string() +
                               "/" + cfg + " TRAIN_SEEDS=8469\\,1\\,2 "),
               o);
  }
  BOOST_TEST(countOf(o,
                     "TRAIN_OUT=/scratch/s/cifar10-4000/runs TRAIN_DATA=/scratch/d/cifar10 "
                     "TRAIN_GPU=1 ") == 2u,
             o);
  BOOST_TEST(countOf(o,
                     "--array=0-2 --nodes=2 --ntasks-per-node=4 --cpus-per-task=1 "
                     "--gpus-per-node=4 --time=2-00:00:00 --signal=B:USR1@600 ") == 2u,
             o);
  BOOST_TEST(countOf(o, "--dependency=afterok:\\$PREP_ID --kill-on-invalid-dep=yes") == 2u, o);
  BOOST_TEST(contains(o, "--dependency=afterok:\\$TRAIN_ID_0:\\$TRAIN_ID_1 "), o);
  BOOST_TEST(contains(o, "--dependency=afterok:\\$EVAL_ID "), o);
  BOOST_TEST(contains(o, "REPORT_TSNE_RUN=/scratch/s/cifar10-4000/runs/cifar10-4000/seed8469 "), o);
  BOOST_TEST(
      contains(o, "--output=/scratch/s/cifar10-4000/logs/train-cifar10-4000-baseline-%A_%a.out"),
      o);
}

BOOST_AUTO_TEST_CASE(bad_settings_get_one_line_and_exit_code_2) {
  struct Case {
    std::string env, name, args, message;
  };
  const std::vector<Case> cases = {
      {"", "submit-study.sh", "--seeds 1", "--experiment: not set"},
      {"", "submit-study.sh", "--experiment cifar10-4000 --frobnicate 1",
       "unknown option '--frobnicate'"},
      {"", "submit-study.sh", "--experiment cifar10-4000 --methods nope",
       "--methods nope: no config"},
      {"", "submit-study.sh", "--experiment cifar10-4000 --gpus-per-node 4 --ranks-per-node 2",
       "--ranks-per-node: expected one rank per GPU (4), got 2"},
      {"", "submit-study.sh", "--experiment cifar10-4000 --seeds 1,x",
       "--seeds: expected integers"},
      {"", "submit-study.sh", "--experiment cifar10-4000 --nodes", "--nodes: expected a value"},
      {"", "train.sbatch", "", "TRAIN_CONFIG is not set"},
      {"TRAIN_CONFIG=/nonexistent.cfg", "train.sbatch", "", "TRAIN_CONFIG: no such file"},
      {"TRAIN_CONFIG=" + sourcePath("jobs/configs/ci-tiny.cfg").string() + " TRAIN_SEED=x",
       "train.sbatch", "", "seed: expected a non-negative integer, got 'x'"},
      {"PREP_DATASET=cifar11", "prep.sbatch", "", "dataset: expected fashion-mnist"},
      {"PREP_DATASET=cifar10 METASEMI_RAW=/nonexistent", "prep.sbatch", "",
       "no such file or folder '/nonexistent/cifar-10-binary.tar.gz'"},
      {"METASEMI_BIN=/nonexistent", "report.sbatch", "", "no program '/nonexistent/"},
      {"", "report.sbatch", "", "REPORT_RUNS is not set"},
      {"METASEMI_MODULES=x PATH=/usr/bin:/bin", "report.sbatch", "", "METASEMI_MODULES"},
  };
  for (const auto& c : cases) {
    const auto r = script("env -u SLURM_JOB_ID " + c.env, c.name, c.args);
    BOOST_TEST_CONTEXT(c.name << " " << c.env << " " << c.args) {
      BOOST_TEST(r.exitCode == 2, r.output);
      BOOST_TEST(contains(r.output, c.message), r.output);
      BOOST_TEST(countOf(r.output, "\n") == 1u, r.output);
    }
  }
}
