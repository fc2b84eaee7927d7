#include "prep/JpegShards.h"

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Log.h"
#include "metasemi/core/Utf8.h"
#include "metasemi/io/H5File.h"
#include "metasemi/io/ShardSet.h"
#include "metasemi/io/ShardWriter.h"
#include "prep/ImagenetSplit.h"
#include "prep/Jpeg.h"
#include "prep/Progress.h"

namespace metasemi::prep {
namespace fs = std::filesystem;
namespace po = boost::program_options;
using core::ConfigError;
using core::IoError;

namespace {

struct Options {
  fs::path input, list, root, out, classesFile;
  std::string split, dataset, statsFrom;
  std::int64_t perShard = 1024;
  int shorterSide = 0;
  int quality = 90;
  std::int64_t maxPixels = kDefaultMaxJpegPixels;
  bool skipBad = false;
  bool resume = true;
  double progressInterval = 10.0;
};

// The plan every rank works from: images in global order and the class names.
struct Plan {
  std::vector<std::string> classes;
  std::vector<std::int64_t> labels;
  std::vector<std::string> paths;  // relative to the root
};

std::string joinLines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) {
    s += x;
    s += '\n';
  }
  return s;
}

std::vector<std::string> splitLines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    const auto end = s.find('\n', start);
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Collective: rank `root`'s string on every rank.
void broadcastString(comm::Communicator& comm, std::string& s, int root) {
  std::int64_t size = static_cast<std::int64_t>(s.size());
  comm.broadcast(&size, sizeof size, root);
  s.resize(static_cast<std::size_t>(size));
  if (size > 0) comm.broadcast(s.data(), s.size(), root);
}

Plan makePlan(const Options& o) {
  std::vector<TreeImage> images = o.list.empty() ? scanClassTree(o.input) : readImageList(o.list);
  Plan plan;
  if (!o.classesFile.empty()) {
    std::ifstream in(o.classesFile);
    MS_REQUIRE(in, IoError, "{}: cannot open the class list", o.classesFile.string());
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) plan.classes.push_back(line);
    }
    MS_REQUIRE(!plan.classes.empty(), IoError, "{}: no classes in it", o.classesFile.string());
    MS_REQUIRE(std::is_sorted(plan.classes.begin(), plan.classes.end()), IoError,
               "{}: classes must be sorted (the label is the index in sorted order)",
               o.classesFile.string());
  } else {
    std::set<std::string> found;
    for (const auto& i : images) found.insert(i.label);
    plan.classes.assign(found.begin(), found.end());
  }
  // The shard format stores class names as UTF-8 strings.
  const std::string classSource = !o.classesFile.empty()
                                      ? o.classesFile.string()
                                      : (o.list.empty() ? o.input : o.list).string();
  for (const auto& c : plan.classes) {
    MS_REQUIRE(core::isValidUtf8(c), IoError, "{}: class name '{}' is not valid UTF-8", classSource,
               core::printable(c));
  }
  std::map<std::string, std::int64_t> index;
  for (std::size_t i = 0; i < plan.classes.size(); ++i) {
    index[plan.classes[i]] = static_cast<std::int64_t>(i);
  }
  std::sort(images.begin(), images.end(),
            [](const TreeImage& a, const TreeImage& b) { return a.relPath < b.relPath; });
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto it = index.find(images[i].label);
    MS_REQUIRE(it != index.end(), IoError, "{}: class '{}' of {} is not in {}",
               (o.list.empty() ? o.input : o.list).string(), images[i].label, images[i].relPath,
               o.classesFile.string());
    MS_REQUIRE(i == 0 || images[i].relPath != images[i - 1].relPath, IoError,
               "{}: {} is listed twice", o.list.string(), images[i].relPath);
    plan.labels.push_back(it->second);
    plan.paths.push_back(images[i].relPath);
  }
  return plan;
}

std::string serialise(const Plan& p) {
  std::vector<std::string> lines;
  lines.push_back(std::to_string(p.classes.size()));
  lines.insert(lines.end(), p.classes.begin(), p.classes.end());
  for (std::size_t i = 0; i < p.paths.size(); ++i) {
    lines.push_back(fmt::format("{}\t{}", p.labels[i], p.paths[i]));
  }
  return joinLines(lines);
}

Plan deserialise(const std::string& s) {
  const auto lines = splitLines(s);
  Plan p;
  const auto nc = static_cast<std::size_t>(std::stoll(lines.at(0)));
  p.classes.assign(lines.begin() + 1, lines.begin() + 1 + static_cast<std::ptrdiff_t>(nc));
  for (std::size_t i = 1 + nc; i < lines.size(); ++i) {
    const auto tab = lines[i].find('\t');
    p.labels.push_back(std::stoll(lines[i].substr(0, tab)));
    p.paths.push_back(lines[i].substr(tab + 1));
  }
  return p;
}

std::vector<std::uint8_t> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  MS_REQUIRE(in, IoError, "{}: cannot open (missing or unreadable)", path.string());
  std::vector<std::uint8_t> data(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
  MS_REQUIRE(in, IoError, "{}: read failed", path.string());
  return data;
}

Options parseOptions(const std::vector<std::string>& args, bool& help) {
  po::options_description d("metasemi-prep jpeg-shards");
  d.add_options()("help,h", "show these options")("input,i", po::value<std::string>(),
                                                  "class-folder tree: <input>/<class>/<image>")(
      "list", po::value<std::string>(),
      "image list instead of --input (reference format: class/file per line)")(
      "root", po::value<std::string>(), "with --list: the folder the list's paths start in")(
      "out,o", po::value<std::string>(), "shard set folder")(
      "split", po::value<std::string>(), "split name (train_labeled, train_unlabeled, val, ...)")(
      "dataset", po::value<std::string>()->default_value("imagenet"), "dataset name")(
      "classes", po::value<std::string>(),
      "sorted class list (one per line; e.g. classes.txt of imagenet-split) so that every split "
      "numbers classes alike; default: the classes found")(
      "images-per-shard", po::value<std::int64_t>()->default_value(1024), "images per shard")(
      "shorter-side", po::value<int>()->default_value(0),
      "re-encode images whose shorter side is larger to this size (0: keep every byte)")(
      "quality", po::value<int>()->default_value(90), "JPEG quality of re-encoded images")(
      "max-megapixels", po::value<double>()->default_value(kDefaultMaxJpegPixels / 1e6),
      "refuse images of more pixels than this (width x height from the header, checked before "
      "decoding)")(
      "skip-bad", po::bool_switch(),
      "skip files that are not decodable JPEGs and list them in <out>/<split>.skipped.txt "
      "(default: stop with an error)")(
      "stats-from", po::value<std::string>(),
      "take mean/std from this split's index (e.g. train_labeled for val); default: this "
      "split's own pixels")("no-resume", po::bool_switch(),
                            "rewrite every shard even when a valid one exists")(
      "log-level", po::value<std::string>(), "trace, debug, info, warn or error")(
      "progress-interval", po::value<double>()->default_value(10.0),
      "seconds between progress lines in a batch log");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    MS_THROW(ConfigError, "jpeg-shards: {}", e.what());
  }
  help = vm.count("help") > 0;
  Options o;
  if (help) {
    std::cout << d;
    return o;
  }
  MS_REQUIRE(vm.count("input") != vm.count("list"), ConfigError,
             "give exactly one of --input (class tree) and --list (with --root)");
  MS_REQUIRE(!vm.count("list") || vm.count("root"), ConfigError, "--list needs --root");
  MS_REQUIRE(vm.count("out"), ConfigError, "--out is required");
  MS_REQUIRE(vm.count("split"), ConfigError, "--split is required");
  if (vm.count("input")) o.input = o.root = vm["input"].as<std::string>();
  if (vm.count("list")) {
    o.list = vm["list"].as<std::string>();
    o.root = vm["root"].as<std::string>();
  }
  if (vm.count("classes")) o.classesFile = vm["classes"].as<std::string>();
  if (vm.count("stats-from")) o.statsFrom = vm["stats-from"].as<std::string>();
  o.out = vm["out"].as<std::string>();
  o.split = vm["split"].as<std::string>();
  MS_REQUIRE(!o.split.empty() && o.split.find('/') == std::string::npos &&
                 o.split.find('.') == std::string::npos,
             ConfigError, "--split '{}' must be a plain name (no '/' or '.')", o.split);
  o.dataset = vm["dataset"].as<std::string>();
  o.perShard = vm["images-per-shard"].as<std::int64_t>();
  MS_REQUIRE(o.perShard > 0, ConfigError, "--images-per-shard must be positive, got {}",
             o.perShard);
  o.shorterSide = vm["shorter-side"].as<int>();
  MS_REQUIRE(o.shorterSide >= 0, ConfigError, "--shorter-side must be >= 0, got {}", o.shorterSide);
  o.quality = vm["quality"].as<int>();
  MS_REQUIRE(o.quality >= 1 && o.quality <= 100, ConfigError, "--quality must be in 1..100, got {}",
             o.quality);
  o.maxPixels = maxPixelsOf(vm["max-megapixels"].as<double>());
  o.skipBad = vm["skip-bad"].as<bool>();
  o.resume = !vm["no-resume"].as<bool>();
  o.progressInterval = vm["progress-interval"].as<double>();
  return o;
}

io::ShardSetInfo headerOf(const Options& o, const Plan& plan) {
  io::ShardSetInfo h;
  h.dataset = o.dataset;
  h.split = o.split;
  h.source = (o.list.empty() ? o.input : o.list).string();
  h.storage = io::ImageStorage::kJpeg;
  h.numClasses = static_cast<std::int64_t>(plan.classes.size());
  h.classNames = plan.classes;
  h.decodedChannels = 3;
  return h;
}

// Fingerprint of what shard k is made from: its files, labels and the encoding options.
std::uint32_t planCrcOf(const Options& o, const Plan& plan, std::int64_t begin, std::int64_t end) {
  const std::string opts =
      fmt::format("{}|{}|{}|{}|{}|{}|{}", o.dataset, o.split, o.root.string(), o.shorterSide,
                  o.quality, o.skipBad, o.skipBad ? o.maxPixels : 0);
  std::uint32_t crc = io::crc32Of(opts.data(), opts.size());
  for (std::int64_t i = begin; i < end; ++i) {
    const std::string line = fmt::format("{}\t{}\n", plan.labels[static_cast<std::size_t>(i)],
                                         plan.paths[static_cast<std::size_t>(i)]);
    crc = io::crc32Of(line.data(), line.size(), crc);
  }
  return crc;
}

struct ShardOutcome {
  bool reused = false;
  std::int64_t images = 0;
  std::vector<std::string> skipped;  // "path\treason"
};

ShardOutcome makeShard(const Options& o, const Plan& plan, const io::ShardSetInfo& header,
                       const fs::path& staging, std::int64_t k, JpegCodec& codec,
                       Progress& progress) {
  const auto n = static_cast<std::int64_t>(plan.paths.size());
  const std::int64_t begin = k * o.perShard;
  const std::int64_t end = std::min(n, begin + o.perShard);
  const std::uint32_t planCrc = planCrcOf(o, plan, begin, end);
  const fs::path file = staging / fmt::format("shard-{:05d}.h5", k);
  ShardOutcome outcome;
  if (o.resume) {
    const auto existing = io::readShardSummaryFile(file, header, k, true);
    if (existing && existing->planCrc == planCrc) {
      outcome.reused = true;
      outcome.images = static_cast<std::int64_t>(existing->labels.size());
      progress.add(end - begin);
      return outcome;
    }
  }
  io::ShardContent c;
  c.shard = k;
  c.firstIndex = begin;
  c.offsets = {0};
  c.planCrc = planCrc;
  std::vector<std::uint8_t> reencoded;
  for (std::int64_t i = begin; i < end; ++i) {
    const auto& rel = plan.paths[static_cast<std::size_t>(i)];
    const fs::path path = o.root / rel;
    try {
      const auto bytes = readFile(path);
      const auto stats = codec.check(bytes.data(), bytes.size(), path.string(), o.shorterSide,
                                     o.quality, reencoded);
      const auto& kept = reencoded.empty() ? bytes : reencoded;
      c.data.insert(c.data.end(), kept.begin(), kept.end());
      c.offsets.push_back(static_cast<std::int64_t>(c.data.size()));
      c.labels.push_back(plan.labels[static_cast<std::size_t>(i)]);
      if (!c.sources.empty()) c.sources += '\n';
      c.sources += rel;
      c.stats.merge(stats);
    } catch (const IoError& e) {
      if (!o.skipBad) throw;
      outcome.skipped.push_back(fmt::format("{}\t{}", rel, e.what()));
    }
    progress.add(1);
  }
  MS_REQUIRE(!c.labels.empty(), IoError, "{}: all {} images of shard {} are bad", o.root.string(),
             end - begin, k);
  io::writeShardFile(file, header, c);
  outcome.images = static_cast<std::int64_t>(c.labels.size());
  return outcome;
}

// Rank 0, after every shard is staged: numbers the images, moves the staged shards into place
// and writes the index.
void finalise(const Options& o, const Plan& plan, io::ShardSetInfo header, const fs::path& staging,
              std::int64_t numShards) {
  std::vector<std::int64_t> labels, sizes;
  std::vector<std::uint32_t> crcs;
  io::PixelStats stats;
  for (std::int64_t k = 0; k < numShards; ++k) {
    const fs::path file = staging / fmt::format("shard-{:05d}.h5", k);
    const auto s = io::readShardSummaryFile(file, header, k, false);
    MS_REQUIRE(s.has_value(), IoError, "{}: staged shard missing or unreadable", file.string());
    const auto first = static_cast<std::int64_t>(labels.size());
    if (s->firstIndex != first) {
      // Skipped images shift the global numbering of later shards.
      io::H5File f(file.string(), io::H5File::Mode::kReadWrite);
      f.setAttr("/", "first_index", first);
    }
    labels.insert(labels.end(), s->labels.begin(), s->labels.end());
    sizes.push_back(static_cast<std::int64_t>(s->labels.size()));
    crcs.push_back(s->dataCrc);
    stats.merge(s->stats);
  }
  for (std::int64_t k = numShards;; ++k) {
    std::error_code ec;
    if (!fs::remove(staging / fmt::format("shard-{:05d}.h5", k), ec)) break;
  }
  const fs::path final = o.out / o.split;
  std::error_code ec;
  fs::remove_all(final, ec);
  fs::rename(staging, final, ec);
  MS_REQUIRE(!ec, IoError, "{}: cannot rename to {}: {}", staging.string(), final.string(),
             ec.message());
  header.numImages = static_cast<std::int64_t>(labels.size());
  header.shardSizes = sizes;
  if (o.statsFrom.empty()) {
    header.mean = stats.mean();
    header.std = stats.std();
    header.statsSplit = o.split;
  } else {
    const auto from = io::ShardSet::open(o.out, o.statsFrom);
    header.mean = from.info().mean;
    header.std = from.info().std;
    header.statsSplit = from.info().statsSplit;
  }
  io::writeShardIndex(o.out, header, labels, crcs);
}

}  // namespace

int runJpegShards(const std::vector<std::string>& args, comm::Communicator& comm) {
  bool help = false;
  const Options o = parseOptions(args, help);
  if (help) return 0;
  const fs::path staging = o.out / (o.split + ".partial");

  // Rank 0 scans the input (one pass over a possibly shared file system) and hands the plan
  // out; a failure there is reported by rank 0 and ends every rank with the same code.
  std::string planText, error;
  std::int64_t errorCode = 0;
  if (comm.isRoot()) {
    try {
      const Plan p = makePlan(o);
      planText = serialise(p);
      if (!o.statsFrom.empty()) io::ShardSet::open(o.out, o.statsFrom);
      std::error_code ec;
      fs::create_directories(o.out, ec);
      MS_REQUIRE(!ec, IoError, "{}: cannot create folder: {}", o.out.string(), ec.message());
      io::removeShardIndex(o.out, o.split);
      // A finished split becomes the staging folder, so a rerun reuses its shards.
      if (fs::is_directory(o.out / o.split) && !fs::exists(staging)) {
        fs::rename(o.out / o.split, staging);
      }
      fs::create_directories(staging);
    } catch (const std::exception& e) {
      error = core::describeError(e);
      errorCode = core::exitCodeFor(e);
    }
  }
  comm.broadcast(&errorCode, sizeof errorCode, 0);
  if (errorCode != 0) {
    if (comm.isRoot()) std::cerr << "metasemi-prep: " << error << "\n";
    return static_cast<int>(errorCode);
  }
  broadcastString(comm, planText, 0);
  const Plan plan = deserialise(planText);
  const io::ShardSetInfo header = headerOf(o, plan);
  const auto n = static_cast<std::int64_t>(plan.paths.size());
  const std::int64_t numShards = (n + o.perShard - 1) / o.perShard;
  const int size = comm.size();
  const int rank = comm.rank();
  std::int64_t mine = 0;
  for (std::int64_t k = rank; k < numShards; k += size) {
    mine += std::min(n, (k + 1) * o.perShard) - k * o.perShard;
  }
  if (comm.isRoot()) {
    spdlog::info("jpeg-shards {}: {} images of {} classes in {} shards of {} on {} rank{}", o.split,
                 n, plan.classes.size(), numShards, o.perShard, size, size == 1 ? "" : "s");
  }

  // Rounds keep the ranks in step, so a bad file on one rank stops all of them after the
  // current shard instead of when everything else is done.
  JpegCodec codec;
  codec.setMaxPixels(o.maxPixels);
  Progress progress(fmt::format("jpeg-shards {}", o.split), mine, o.progressInterval);
  std::vector<std::string> skipped;
  std::int64_t reused = 0;
  const std::int64_t rounds = (numShards + size - 1) / size;
  for (std::int64_t r = 0; r < rounds; ++r) {
    const std::int64_t k = r * size + rank;
    std::int64_t failed = 0;
    if (k < numShards) {
      try {
        const auto outcome = makeShard(o, plan, header, staging, k, codec, progress);
        reused += outcome.reused ? 1 : 0;
        skipped.insert(skipped.end(), outcome.skipped.begin(), outcome.skipped.end());
      } catch (const IoError& e) {
        error = e.what();
        failed = 1;
      } catch (const fs::filesystem_error& e) {
        error = core::describeError(e);
        failed = 1;
      }
    }
    comm.allreduceSum(&failed, 1);
    if (failed > 0) {
      // Staged shards stay for the rerun; no index is written, so nothing looks finished.
      if (!error.empty()) {
        std::cerr << (size > 1 ? fmt::format("[rank {}] ", rank) : std::string())
                  << "metasemi-prep: " << error << "\n";
      }
      return core::kExitIo;
    }
  }
  const double rate = progress.finish();
  spdlog::info("jpeg-shards {}: {:.0f} images/s on this rank, {} shard{} reused", o.split, rate,
               reused, reused == 1 ? "" : "s");

  // Rank 0 collects the lists of skipped files.
  std::vector<std::string> allSkipped;
  for (int r = 0; r < size; ++r) {
    std::string text = r == rank ? joinLines(skipped) : std::string();
    broadcastString(comm, text, r);
    if (comm.isRoot()) {
      const auto lines = splitLines(text);
      allSkipped.insert(allSkipped.end(), lines.begin(), lines.end());
    }
  }
  std::int64_t status = 0;
  if (comm.isRoot()) {
    finalise(o, plan, header, staging, numShards);
    const fs::path skippedFile = o.out / (o.split + ".skipped.txt");
    std::error_code ec;
    fs::remove(skippedFile, ec);
    if (!allSkipped.empty()) {
      io::AtomicOutput out(skippedFile.string());
      {
        std::ofstream f(out.tempPath());
        f << joinLines(allSkipped);
      }
      out.commit();
      spdlog::warn("jpeg-shards {}: skipped {} bad file{}, listed in {}", o.split,
                   allSkipped.size(), allSkipped.size() == 1 ? "" : "s", skippedFile.string());
    }
    spdlog::info("jpeg-shards {}: wrote {}", o.split, io::shardIndexPath(o.out, o.split).string());
  }
  comm.broadcast(&status, sizeof status, 0);
  return static_cast<int>(status);
}

}  // namespace metasemi::prep
