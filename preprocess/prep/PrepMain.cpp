#include "prep/PrepMain.h"

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <iostream>
#include <map>

#include "metasemi/app/MpiProgram.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/io/ShardSplit.h"
#include "prep/Convert.h"
#include "prep/ImagenetSplit.h"
#include "prep/JpegShards.h"

namespace metasemi::prep {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using core::ConfigError;
using core::IoError;

namespace {

constexpr const char* kUsage = R"(usage: metasemi-prep <subcommand> [options]

Subcommands (metasemi-prep <subcommand> --help lists the options of each):
  idx             MNIST-format IDX files (raw or .gz), e.g. Fashion-MNIST
  cifar10         CIFAR-10 binary version (the .tar.gz or its extracted folder)
  cifar100        CIFAR-100 binary version (the .tar.gz or its extracted folder)
  svhn            SVHN train_32x32.mat / test_32x32.mat (optionally extra_32x32.mat)
  split           labeled/unlabeled split of a shard set, as the reference makes it
  imagenet-split  class-balanced labeled fraction of an ImageNet-style train tree (file lists)
  jpeg-shards     a class-folder tree or a file list into JPEG shards (MPI-parallel, resumable)
  info            summary of a shard set
  verify          full check of a shard set (checksums, labels, every JPEG decodes)
)";

struct Parsed {
  po::variables_map vm;
  bool help = false;
};

Parsed parse(const std::string& sub, po::options_description& desc,
             const std::vector<std::string>& args) {
  desc.add_options()("help,h", "show the options of this subcommand")(
      "log-level", po::value<std::string>()->default_value("info"),
      "trace, debug, info, warn or error")("progress-interval",
                                           po::value<double>()->default_value(10.0),
                                           "seconds between progress lines in a batch log");
  Parsed p;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), p.vm);
    po::notify(p.vm);
  } catch (const po::error& e) {
    MS_THROW(ConfigError, "{}: {}", sub, e.what());
  }
  p.help = p.vm.count("help") > 0;
  return p;
}

template <typename T>
T required(const Parsed& p, const std::string& flag) {
  MS_REQUIRE(p.vm.count(flag), ConfigError, "--{} is required", flag);
  return p.vm[flag].as<T>();
}

std::string optional(const Parsed& p, const std::string& flag) {
  return p.vm.count(flag) ? p.vm[flag].as<std::string>() : std::string();
}

ConvertOptions convertOptions(const Parsed& p) {
  ConvertOptions o;
  o.out = required<std::string>(p, "out");
  o.imagesPerShard = p.vm["images-per-shard"].as<std::int64_t>();
  MS_REQUIRE(o.imagesPerShard > 0, ConfigError, "--images-per-shard must be positive, got {}",
             o.imagesPerShard);
  o.progressInterval = p.vm["progress-interval"].as<double>();
  return o;
}

void addOutput(po::options_description& d) {
  d.add_options()("out,o", po::value<std::string>(), "shard set folder to write")(
      "images-per-shard", po::value<std::int64_t>()->default_value(100000),
      "images per shard file");
}

// The first existing one of `name` and `name`.gz in `dir`, else `name` (reported as missing).
fs::path findIdx(const fs::path& dir, const std::string& name) {
  if (fs::exists(dir / name)) return dir / name;
  if (fs::exists(dir / (name + ".gz"))) return dir / (name + ".gz");
  return dir / name;
}

int runIdx(const std::vector<std::string>& args) {
  po::options_description d("metasemi-prep idx");
  d.add_options()("input,i", po::value<std::string>(),
                  "folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                  "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]")(
      "train-images", po::value<std::string>(), "training images file (instead of --input)")(
      "train-labels", po::value<std::string>(), "training labels file")(
      "test-images", po::value<std::string>(), "test images file")(
      "test-labels", po::value<std::string>(), "test labels file")(
      "dataset", po::value<std::string>()->default_value("fashion-mnist"),
      "dataset name (fashion-mnist and mnist get their class names)")(
      "num-classes", po::value<std::int64_t>()->default_value(10), "number of classes");
  addOutput(d);
  const auto p = parse("idx", d, args);
  if (p.help) {
    std::cout << d;
    return 0;
  }
  const auto options = convertOptions(p);
  std::string trainImages = optional(p, "train-images"), trainLabels = optional(p, "train-labels");
  std::string testImages = optional(p, "test-images"), testLabels = optional(p, "test-labels");
  if (p.vm.count("input")) {
    const fs::path in = p.vm["input"].as<std::string>();
    MS_REQUIRE(fs::is_directory(in), IoError, "{}: --input folder does not exist", in.string());
    trainImages = findIdx(in, "train-images-idx3-ubyte");
    trainLabels = findIdx(in, "train-labels-idx1-ubyte");
    testImages = findIdx(in, "t10k-images-idx3-ubyte");
    testLabels = findIdx(in, "t10k-labels-idx1-ubyte");
  }
  MS_REQUIRE(trainImages.empty() == trainLabels.empty() && testImages.empty() == testLabels.empty(),
             ConfigError,
             "give images and labels files together (--train-images with "
             "--train-labels, --test-images with --test-labels)");
  MS_REQUIRE(!trainImages.empty() || !testImages.empty(), ConfigError,
             "give --input or --train-images/--train-labels and/or --test-images/--test-labels");
  std::vector<std::pair<std::string, RawSplit>> splits;
  // Read (and check) everything before writing anything.
  if (!trainImages.empty()) splits.emplace_back("train", readIdxSplit(trainImages, trainLabels));
  if (!testImages.empty()) splits.emplace_back("test", readIdxSplit(testImages, testLabels));
  const std::string dataset = p.vm["dataset"].as<std::string>();
  const auto numClasses = p.vm["num-classes"].as<std::int64_t>();
  MS_REQUIRE(numClasses > 0 && numClasses <= 256, ConfigError,
             "--num-classes must be in 1..256, got {}", numClasses);
  writeFixedDataset(options, dataset, idxClassNames(dataset, numClasses), splits);
  return 0;
}

int runCifar(const std::vector<std::string>& args, bool hundred) {
  const std::string sub = hundred ? "cifar100" : "cifar10";
  po::options_description d("metasemi-prep " + sub);
  d.add_options()("input,i", po::value<std::string>(),
                  hundred ? "cifar-100-binary.tar.gz or a folder with train.bin and test.bin"
                          : "cifar-10-binary.tar.gz or a folder with data_batch_1..5.bin and "
                            "test_batch.bin");
  if (hundred) {
    d.add_options()("labels", po::value<std::string>()->default_value("fine"),
                    "fine (100 classes) or coarse (20 superclasses)");
  }
  addOutput(d);
  const auto p = parse(sub, d, args);
  if (p.help) {
    std::cout << d;
    return 0;
  }
  const auto options = convertOptions(p);
  const ArchiveFiles files(required<std::string>(p, "input"));
  std::vector<std::pair<std::string, RawSplit>> splits;
  std::vector<std::string> names;
  std::string dataset = sub;
  if (hundred) {
    const std::string kind = p.vm["labels"].as<std::string>();
    MS_REQUIRE(kind == "fine" || kind == "coarse", ConfigError,
               "--labels must be fine or coarse, got '{}'", kind);
    const bool fine = kind == "fine";
    splits.emplace_back("train", readCifar100(files, true, fine));
    splits.emplace_back("test", readCifar100(files, false, fine));
    const std::int64_t n = fine ? 100 : 20;
    std::vector<std::string> numbers;
    for (std::int64_t i = 0; i < n; ++i) numbers.push_back(std::to_string(i));
    names =
        classNamesFrom(files, fine ? "fine_label_names.txt" : "coarse_label_names.txt", n, numbers);
    if (!fine) dataset = "cifar100-coarse";
  } else {
    splits.emplace_back("train", readCifar10(files, true));
    splits.emplace_back("test", readCifar10(files, false));
    names = classNamesFrom(files, "batches.meta.txt", 10, cifar10ClassNames());
  }
  writeFixedDataset(options, dataset, names, splits);
  return 0;
}

int runSvhn(const std::vector<std::string>& args) {
  po::options_description d("metasemi-prep svhn");
  d.add_options()("input,i", po::value<std::string>(),
                  "folder with train_32x32.mat and test_32x32.mat")(
      "extra", po::bool_switch(),
      "also convert extra_32x32.mat (split 'extra'; the reference "
      "does not use it)");
  addOutput(d);
  const auto p = parse("svhn", d, args);
  if (p.help) {
    std::cout << d;
    return 0;
  }
  const auto options = convertOptions(p);
  const fs::path in = required<std::string>(p, "input");
  MS_REQUIRE(fs::is_directory(in), IoError, "{}: --input folder does not exist", in.string());
  std::vector<std::pair<std::string, RawSplit>> splits;
  splits.emplace_back("train", readSvhn(in / "train_32x32.mat"));
  splits.emplace_back("test", readSvhn(in / "test_32x32.mat"));
  if (p.vm["extra"].as<bool>()) splits.emplace_back("extra", readSvhn(in / "extra_32x32.mat"));
  writeFixedDataset(options, "svhn", idxClassNames("svhn", 10), splits);
  return 0;
}

int runSplit(const std::vector<std::string>& args) {
  po::options_description d("metasemi-prep split");
  d.add_options()("set,s", po::value<std::string>(), "shard set folder")(
      "num-labels,n", po::value<std::int64_t>(),
      "labeled images in all (a multiple of the "
      "number of classes)")(
      "seed", po::value<std::uint64_t>()->default_value(1234),
      "seed of Python's random.seed in the reference (--seed of train_meta.py)")(
      "split", po::value<std::string>()->default_value("train"), "split to select from")(
      "name", po::value<std::string>(), "name of the label split (default labels-<n>-seed<s>)");
  const auto p = parse("split", d, args);
  if (p.help) {
    std::cout << d;
    return 0;
  }
  const fs::path dir = required<std::string>(p, "set");
  const auto numLabels = required<std::int64_t>(p, "num-labels");
  const auto seed = p.vm["seed"].as<std::uint64_t>();
  const auto set = io::ShardSet::open(dir, p.vm["split"].as<std::string>());
  io::LabelSplit s;
  try {
    s = io::classBalancedSplit(set.labels(), set.info().numClasses, numLabels, seed,
                               set.info().split);
  } catch (const ConfigError& e) {
    MS_THROW(ConfigError, "--num-labels {}: {}", numLabels, e.what());
  }
  if (p.vm.count("name")) s.name = p.vm["name"].as<std::string>();
  io::writeLabelSplit(dir, s);
  spdlog::info("{}: label split {} of {}: {} labeled ({} per class), {} unlabeled", dir.string(),
               s.name, s.split, s.labeled.size(), numLabels / set.info().numClasses,
               s.unlabeled.size());
  return 0;
}

int runInfo(const std::vector<std::string>& args, bool verify) {
  po::options_description d(verify ? "metasemi-prep verify" : "metasemi-prep info");
  d.add_options()("set,s", po::value<std::string>(), "shard set folder")(
      "split", po::value<std::string>()->default_value(""), "only this split (default all)");
  if (verify) {
    d.add_options()("max-megapixels",
                    po::value<double>()->default_value(kDefaultMaxJpegPixels / 1e6),
                    "report JPEG images of more pixels than this");
  }
  const auto p = parse(verify ? "verify" : "info", d, args);
  if (p.help) {
    std::cout << d;
    return 0;
  }
  const fs::path dir = required<std::string>(p, "set");
  MS_REQUIRE(fs::is_directory(dir), IoError, "{}: shard set folder does not exist", dir.string());
  const std::string split = p.vm["split"].as<std::string>();
  if (!verify) {
    printInfo(dir, split, std::cout);
    return 0;
  }
  const auto problems =
      verifySet(dir, split, std::cout, maxPixelsOf(p.vm["max-megapixels"].as<double>()));
  std::cout << std::flush;
  MS_REQUIRE(problems == 0, IoError, "{}: verify found {} problem{}", dir.string(), problems,
             problems == 1 ? "" : "s");
  return 0;
}

int dispatch(const std::string& sub, const std::vector<std::string>& args,
             comm::Communicator& comm) {
  if (sub == "jpeg-shards") return runJpegShards(args, comm);
  MS_REQUIRE(comm.size() == 1, ConfigError,
             "{} runs in one process; only jpeg-shards runs on several MPI ranks", sub);
  if (sub == "idx") return runIdx(args);
  if (sub == "cifar10") return runCifar(args, false);
  if (sub == "cifar100") return runCifar(args, true);
  if (sub == "svhn") return runSvhn(args);
  if (sub == "split") return runSplit(args);
  if (sub == "imagenet-split") return runImagenetSplit(args);
  if (sub == "info") return runInfo(args, false);
  if (sub == "verify") return runInfo(args, true);
  MS_THROW(ConfigError, "unknown subcommand '{}' (run metasemi-prep --help)", sub);
}

std::string logLevelOf(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--log-level") return args[i + 1];
  }
  return "info";
}

}  // namespace

int prepMain(int argc, char** argv) {
  app::MpiProgram program("metasemi-prep", argc, argv);
  comm::Communicator& comm = program.comm();
  return program.run([&]() -> int {
    MS_REQUIRE(argc >= 2, ConfigError, "no subcommand (run metasemi-prep --help)");
    const std::string sub = argv[1];
    if (sub == "--help" || sub == "-h" || sub == "help") {
      if (comm.isRoot()) std::cout << kUsage;
      return core::kExitOk;
    }
    const std::vector<std::string> args(argv + 2, argv + argc);
    try {
      core::setupLogging(comm.rank(), comm.size(), logLevelOf(args));
    } catch (const std::exception&) {
      MS_THROW(ConfigError, "--log-level must be trace, debug, info, warn or error");
    }
    return dispatch(sub, args, comm);
  });
}

}  // namespace metasemi::prep
