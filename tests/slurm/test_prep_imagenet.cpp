// jobs/prep.sbatch for ImageNet on the one-node Slurm: an ImageNet-style tree of real JPEG files
// (Debian's opencv-doc) becomes the labeled/unlabeled lists and the shards of train_labeled,
// train_unlabeled and val, written by the 2 tasks of the job through `srun --mpi=pmix`. A second
// submission keeps the finished splits; a forced one reuses every shard.
#include <fmt/format.h>

#include <regex>

#include "metasemi/io/H5File.h"
#include "slurm/SlurmCluster.h"
#include "support/JpegTree.h"
#include "support/TestSupport.h"

namespace fs = std::filesystem;
using metasemi::io::H5File;
using metasemi::test::readText;
using metasemi::test::runCommand;

namespace {

// <root>/train/<class>/*.JPEG (5 + 5 + 3 images) and <root>/val/<class>/*.JPEG (the last 2 of
// each class again).
void makeImagenetTree(const fs::path& root) {
  const std::vector<std::string> classes = {"n001", "n002", "n003"};
  metasemi::test::writeJpegClassTree(root / "train", classes);
  const auto images = metasemi::test::openCvDocImages();
  const auto& files = metasemi::test::jpegClassFiles();
  for (std::size_t c = 0; c < classes.size(); ++c) {
    fs::create_directories(root / "val" / classes[c]);
    for (std::size_t k = 0; k < 2; ++k) {
      fs::copy_file(images / files[c][files[c].size() - 1 - k],
                    root / "val" / classes[c] / fmt::format("val_{}_{}.JPEG", classes[c], k));
    }
  }
}

std::int64_t attr(const fs::path& index, const char* key) {
  H5File f(index.string(), H5File::Mode::kRead);
  return f.attrInt("/", key);
}

// Sum of the "N shards reused" counts that jpeg-shards logged.
int reusedShards(const std::string& log) {
  int sum = 0;
  const std::regex re("(\\d+) shards? reused");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it) {
    sum += std::stoi((*it)[1].str());
  }
  return sum;
}

}  // namespace

BOOST_AUTO_TEST_CASE(imagenet_shards_on_two_tasks_and_resume) {
  if (!metasemi::test::slurmInstalled()) {
    BOOST_FAIL("slurm-wlm and munge are not installed (see env/packages.txt)");
  }
  metasemi::test::SlurmCluster cluster("slurm_prep_imagenet", "16867");
  const fs::path raw = cluster.dir() / "raw" / "imagenet";
  makeImagenetTree(raw);
  const auto started = cluster.start();
  BOOST_TEST_REQUIRE(started.exitCode == 0, started.output);

  const fs::path out = cluster.dir() / "data" / "imagenet";
  // Submits prep.sbatch with `env` and waits for it; returns the job's output.
  int runs = 0;
  auto prep = [&](const std::string& env) {
    const fs::path log = cluster.dir() / fmt::format("prep-{}.out", ++runs);
    const auto r = cluster.run(fmt::format(
        "PREP_DATASET=imagenet METASEMI_RAW={} METASEMI_DATA={} PREP_FRACTION=0.4 "
        "PREP_IMAGES_PER_SHARD=2 {} timeout 300 sbatch --wait --ntasks=2 --cpus-per-task=1 "
        "--time=10 --output={} {}",
        (cluster.dir() / "raw").string(), (cluster.dir() / "data").string(), env, log.string(),
        metasemi::test::sourcePath("jobs/prep.sbatch").string()));
    const std::string text = readText(log);
    BOOST_TEST(r.exitCode == 0, r.output << "\n" << text << cluster.diagnostics());
    return text;
  };

  const std::string first = prep("");
  BOOST_TEST(first.find("(2 tasks)") != std::string::npos, first);
  // 40% of each class (at least one): 2 + 2 + 1 labeled, the other 8 unlabeled; 2 images a shard.
  struct Split {
    const char* name;
    std::int64_t images, shards;
  };
  for (const Split& s :
       {Split{"train_labeled", 5, 3}, Split{"train_unlabeled", 8, 4}, Split{"val", 6, 3}}) {
    const fs::path index = out / (std::string(s.name) + ".h5");
    BOOST_TEST_REQUIRE(fs::exists(index), s.name << "\n" << first);
    BOOST_TEST(attr(index, "num_images") == s.images, s.name);
    BOOST_TEST(attr(index, "num_shards") == s.shards, s.name);
    BOOST_TEST(attr(index, "num_classes") == 3, s.name);
  }
  BOOST_TEST(readText(out / "lists" / "classes.txt") == "n001\nn002\nn003\n");
  const auto verify = runCommand(metasemi::test::binary("metasemi-prep").string() +
                                 " verify --set " + out.string());
  BOOST_TEST(verify.exitCode == 0, verify.output);

  // Submitted again, the finished splits are kept; forced, every shard is reused.
  const std::string second = prep("");
  for (const char* s : {"train_labeled", "train_unlabeled", "val"}) {
    BOOST_TEST(second.find(std::string("split ") + s + " present") != std::string::npos, second);
  }
  BOOST_TEST(reusedShards(second) == 0, second);
  const std::string third = prep("PREP_FORCE=1");
  BOOST_TEST(reusedShards(third) == 3 + 4 + 3, third);
  BOOST_TEST(
      runCommand(metasemi::test::binary("metasemi-prep").string() + " verify --set " + out.string())
          .exitCode == 0);
}
