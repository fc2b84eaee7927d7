#include "prep/ImagenetSplit.h"

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "metasemi/core/Error.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/Random.h"
#include "metasemi/io/H5File.h"

namespace metasemi::prep {
namespace fs = std::filesystem;
namespace po = boost::program_options;
using core::ConfigError;
using core::IoError;

std::vector<TreeImage> scanClassTree(const fs::path& root) {
  MS_REQUIRE(fs::is_directory(root), IoError, "{}: no such folder", root.string());
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename();
    if (e.is_directory() && name[0] != '.') classes.push_back(name);
  }
  MS_REQUIRE(!classes.empty(), IoError, "{}: no class folders in it", root.string());
  std::sort(classes.begin(), classes.end());
  std::vector<TreeImage> out;
  for (const auto& c : classes) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(root / c)) {
      const std::string name = e.path().filename();
      if (e.is_regular_file() && name[0] != '.') files.push_back(name);
    }
    MS_REQUIRE(!files.empty(), IoError, "{}: empty class folder", (root / c).string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.push_back({c, c + "/" + f});
  }
  return out;
}

std::vector<TreeImage> readImageList(const fs::path& list) {
  std::ifstream in(list);
  MS_REQUIRE(in, IoError, "{}: cannot open the list", list.string());
  std::vector<TreeImage> out;
  std::string line;
  for (int lineNo = 1; std::getline(in, line); ++lineNo) {
    std::istringstream ls(line);
    std::string token;
    if (!(ls >> token)) continue;
    const auto slash = token.find('/');
    MS_REQUIRE(slash != std::string::npos && slash > 0 && slash + 1 < token.size() &&
                   token.find("..") == std::string::npos && token[0] != '/',
               IoError, "{}:{}: expected 'class/file', found '{}'", list.string(), lineNo, token);
    out.push_back({token.substr(0, slash), token});
  }
  MS_REQUIRE(!out.empty(), IoError, "{}: the list is empty", list.string());
  return out;
}

std::pair<std::vector<TreeImage>, std::vector<TreeImage>> balancedFraction(
    const std::vector<TreeImage>& images, double fraction, std::uint64_t seed) {
  std::map<std::string, std::vector<TreeImage>> byClass;
  for (const auto& im : images) byClass[im.label].push_back(im);
  std::vector<TreeImage> labeled, unlabeled;
  std::uint64_t classIndex = 0;
  for (auto& [label, members] : byClass) {
    std::sort(members.begin(), members.end(),
              [](const TreeImage& a, const TreeImage& b) { return a.relPath < b.relPath; });
    const auto n = static_cast<std::int64_t>(members.size());
    const auto take = std::clamp<std::int64_t>(std::llround(fraction * n), 1, n);
    // Each class has its own stream, so adding or removing a class changes no other class.
    core::Rng rng(core::deriveSeed(seed, {classIndex++}));
    std::vector<std::size_t> order(members.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    core::shuffle(order, rng);
    std::vector<char> chosen(members.size(), 0);
    for (std::int64_t i = 0; i < take; ++i) chosen[order[static_cast<std::size_t>(i)]] = 1;
    for (std::size_t i = 0; i < members.size(); ++i) {
      (chosen[i] ? labeled : unlabeled).push_back(members[i]);
    }
  }
  return {labeled, unlabeled};
}

namespace {

void writeList(const fs::path& path, const std::vector<std::string>& lines) {
  io::AtomicOutput out(path.string());
  {
    std::ofstream f(out.tempPath());
    for (const auto& l : lines) f << l << '\n';
    f.close();
    MS_REQUIRE(f, IoError, "{}: write failed", out.tempPath());
  }
  out.commit();
}

std::vector<std::string> pathsOf(const std::vector<TreeImage>& v) {
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const auto& i : v) out.push_back(i.relPath);
  return out;
}

}  // namespace

int runImagenetSplit(const std::vector<std::string>& args) {
  po::options_description d("metasemi-prep imagenet-split");
  d.add_options()("help,h", "show these options")("log-level", po::value<std::string>(),
                                                  "trace, debug, info, warn or error")(
      "progress-interval", po::value<double>(), "unused here")(
      "train", po::value<std::string>(), "training tree: <train>/<synset>/*.JPEG")(
      "out,o", po::value<std::string>(),
      "folder for train_labeled.txt, train_unlabeled.txt, "
      "classes.txt")("fraction", po::value<double>()->default_value(0.1),
                     "labeled fraction of each class")(
      "seed", po::value<std::uint64_t>()->default_value(0), "seed of the selection")(
      "labeled-list", po::value<std::string>(),
      "take the labeled images from this list (reference format: synset/file.JPEG per line)")(
      "unlabeled-list", po::value<std::string>(),
      "with --labeled-list: the unlabeled images (default: every other training image)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    MS_THROW(ConfigError, "imagenet-split: {}", e.what());
  }
  if (vm.count("help")) {
    std::cout << d;
    return 0;
  }
  MS_REQUIRE(vm.count("train"), ConfigError, "--train is required");
  MS_REQUIRE(vm.count("out"), ConfigError, "--out is required");
  const fs::path train = vm["train"].as<std::string>();
  const fs::path out = vm["out"].as<std::string>();
  const double fraction = vm["fraction"].as<double>();
  MS_REQUIRE(fraction > 0 && fraction < 1, ConfigError, "--fraction must be in (0, 1), got {}",
             fraction);
  MS_REQUIRE(!vm.count("unlabeled-list") || vm.count("labeled-list"), ConfigError,
             "--unlabeled-list needs --labeled-list");

  const auto all = scanClassTree(train);
  std::set<std::string> classes;
  for (const auto& i : all) classes.insert(i.label);
  std::vector<TreeImage> labeled, unlabeled;
  if (vm.count("labeled-list")) {
    std::set<std::string> known;
    for (const auto& i : all) known.insert(i.relPath);
    const fs::path labeledList = vm["labeled-list"].as<std::string>();
    std::set<std::string> taken;
    auto take = [&](const fs::path& list, std::vector<TreeImage>& into) {
      for (const auto& i : readImageList(list)) {
        MS_REQUIRE(known.count(i.relPath), IoError, "{}: {} is not in {}", list.string(), i.relPath,
                   train.string());
        MS_REQUIRE(taken.insert(i.relPath).second, IoError, "{}: {} is listed twice", list.string(),
                   i.relPath);
        into.push_back(i);
      }
    };
    take(labeledList, labeled);
    if (vm.count("unlabeled-list")) {
      take(vm["unlabeled-list"].as<std::string>(), unlabeled);
    } else {
      for (const auto& i : all) {
        if (!taken.count(i.relPath)) unlabeled.push_back(i);
      }
    }
  } else {
    std::tie(labeled, unlabeled) = balancedFraction(all, fraction, vm["seed"].as<std::uint64_t>());
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  MS_REQUIRE(!ec, IoError, "{}: cannot create folder: {}", out.string(), ec.message());
  writeList(out / "train_labeled.txt", pathsOf(labeled));
  writeList(out / "train_unlabeled.txt", pathsOf(unlabeled));
  writeList(out / "classes.txt", std::vector<std::string>(classes.begin(), classes.end()));
  spdlog::info("{}: {} classes, {} labeled and {} unlabeled images -> {}", train.string(),
               classes.size(), labeled.size(), unlabeled.size(), out.string());
  return 0;
}

}  // namespace metasemi::prep
