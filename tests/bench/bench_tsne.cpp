// metasemi-bench-tsne: time and final KL divergence of the project's t-SNE next to
// scikit-learn's TSNE (tests/bench/tsne_sklearn.py, run with /usr/bin/python3) on the same
// input with the same settings and thread count.
//
// Input: the first N Fashion-MNIST training images (pixels / 255) projected to D dimensions by
// a seeded Gaussian random matrix: real clustered data of the width of ConvLarge's features.
// Both embeddings are scored by the same KL(P || Q): P = this program's sparse affinities
// (perplexity 30, 91 neighbours, as scikit-learn builds them), Z summed exactly over all pairs.
// --methods times this implementation's exact and Barnes-Hut gradients side by side (scored by
// the same sparse-P KL; "own KL" is the KL each run optimised).
#include <zlib.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/post/Tsne.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace metasemi;

namespace {

std::vector<std::uint8_t> readGzip(const fs::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  MS_REQUIRE(f != nullptr, core::IoError, "cannot open {}", path.string());
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> buf(1 << 20);
  int got;
  while ((got = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
    out.insert(out.end(), buf.begin(), buf.begin() + got);
  }
  gzclose(f);
  MS_REQUIRE(got == 0, core::IoError, "cannot decompress {}", path.string());
  return out;
}

// First `n` images of an IDX3 file as n x (rows*cols) floats in [0, 1].
std::vector<float> loadImages(const fs::path& path, std::size_t n, std::size_t& pixels) {
  const auto bytes = readGzip(path);
  auto be32 = [&](std::size_t off) {
    return (std::uint32_t(bytes[off]) << 24) | (std::uint32_t(bytes[off + 1]) << 16) |
           (std::uint32_t(bytes[off + 2]) << 8) | std::uint32_t(bytes[off + 3]);
  };
  MS_REQUIRE(bytes.size() >= 16 && be32(0) == 0x803, core::IoError, "{}: not an IDX3 image file",
             path.string());
  const std::size_t count = be32(4);
  pixels = std::size_t(be32(8)) * be32(12);
  MS_REQUIRE(n <= count, core::ConfigError, "--sizes: {} has only {} images, asked for {}",
             path.string(), count, n);
  std::vector<float> out(n * pixels);
  for (std::size_t i = 0; i < n * pixels; ++i) out[i] = bytes[16 + i] / 255.0f;
  return out;
}

std::vector<float> project(const std::vector<float>& x, std::size_t n, std::size_t d,
                           std::size_t dim, std::uint64_t seed) {
  core::Rng rng(core::deriveSeed(seed, {0xbe7c}));
  std::vector<float> r(d * dim);
  for (auto& v : r) {
    const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
    v = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2) /
                           std::sqrt(double(dim)));
  }
  std::vector<float> out(n * dim, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t t = 0; t < d; ++t) {
      const float v = x[i * d + t];
      if (v == 0.0f) continue;
      for (std::size_t c = 0; c < dim; ++c) out[i * dim + c] += v * r[t * dim + c];
    }
  }
  return out;
}

struct SklearnRun {
  bool ok = false;
  double seconds = 0.0;
  double ownKl = 0.0;
  std::vector<double> embedding;
};

SklearnRun runSklearn(const std::string& script, const fs::path& work, const float* x,
                      std::size_t n, std::size_t d, int threads, std::uint64_t seed) {
  SklearnRun run;
  const fs::path input = work / "input.f32", output = work / "sklearn.f64";
  {
    std::ofstream f(input, std::ios::binary);
    f.write(reinterpret_cast<const char*>(x), static_cast<std::streamsize>(n * d * 4));
  }
  const std::string cmd = fmt::format(
      "OMP_NUM_THREADS={0} OPENBLAS_NUM_THREADS={0} /usr/bin/python3 {1} --input {2} --n {3} "
      "--d {4} --threads {0} --seed {5} --output {6} 2>&1",
      threads, script, input.string(), n, d, seed, output.string());
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return run;
  std::string text;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe) != nullptr) text += buf;
  const int status = pclose(pipe);
  if (status != 0) {
    std::cerr << "scikit-learn run failed:\n" << text;
    return run;
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "seconds") words >> run.seconds;
    if (key == "kl") words >> run.ownKl;
  }
  run.embedding.resize(2 * n);
  std::ifstream f(output, std::ios::binary);
  f.read(reinterpret_cast<char*>(run.embedding.data()),
         static_cast<std::streamsize>(2 * n * sizeof(double)));
  run.ok = static_cast<bool>(f);
  return run;
}

int benchMain(int argc, char** argv) {
  std::string sizesArg, methodsArg, dataDir, script, workDir;
  std::size_t dim;
  int threads;
  std::uint64_t seed;
  bool skipSklearn = false;
  po::options_description opts("metasemi-bench-tsne options");
  opts.add_options()("help,h", "show this help")(
      "sizes", po::value(&sizesArg)->default_value("5000,20000"), "comma-separated point counts")(
      "methods", po::value(&methodsArg)->default_value("barnes-hut"),
      "comma-separated gradients of this implementation to time: barnes-hut, exact")(
      "dim", po::value(&dim)->default_value(128), "feature dimension")(
      "threads", po::value(&threads)->default_value(2), "threads for both implementations")(
      "seed", po::value(&seed)->default_value(0), "seed")(
      "data",
      po::value(&dataDir)->default_value(std::getenv("METASEMI_FASHION_MNIST")
                                             ? std::getenv("METASEMI_FASHION_MNIST")
                                             : "/usr/share/datasets/fashion-mnist"),
      "Fashion-MNIST folder (IDX .gz files)")(
      "sklearn-script", po::value(&script)->default_value("tests/bench/tsne_sklearn.py"),
      "the scikit-learn runner")("skip-sklearn", po::bool_switch(&skipSklearn),
                                 "time this implementation only")(
      "work", po::value(&workDir)->default_value("/tmp/metasemi-bench-tsne"),
      "folder for the exchanged arrays");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, opts), vm);
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  po::notify(vm);
  std::vector<std::size_t> sizes;
  {
    std::istringstream in(sizesArg);
    std::string item;
    while (std::getline(in, item, ',')) sizes.push_back(std::stoul(item));
  }
  std::vector<post::TsneMethod> methods;
  {
    std::istringstream in(methodsArg);
    std::string item;
    while (std::getline(in, item, ',')) {
      MS_REQUIRE(item == "exact" || item == "barnes-hut", core::ConfigError,
                 "--methods: expected exact or barnes-hut, got '{}'", item);
      methods.push_back(item == "exact" ? post::TsneMethod::kExact : post::TsneMethod::kBarnesHut);
    }
    MS_REQUIRE(!methods.empty(), core::ConfigError, "--methods: give at least one method");
  }
  fs::create_directories(workDir);
  std::size_t maxN = 0;
  for (auto s : sizes) maxN = std::max(maxN, s);
  std::size_t pixels = 0;
  const auto images = loadImages(fs::path(dataDir) / "train-images-idx3-ubyte.gz", maxN, pixels);
  const auto features = project(images, maxN, pixels, dim, seed);

  std::printf("%8s %14s %10s %10s %10s %12s %10s %9s %9s\n", "points", "impl", "knn+P s", "optim s",
              "total s", "KL(P||Q)", "own KL", "speed-up", "KL ratio");
  for (std::size_t n : sizes) {
    post::TsneOptions o;
    o.threads = threads;
    o.seed = seed;
    const auto p = post::sparseAffinities(features.data(), n, dim, o.perplexity,
                                          std::min<std::size_t>(n - 1, 91), threads);
    // scikit-learn is compared with the first of --methods.
    double ourSeconds = 0.0, ourKl = 0.0;
    for (std::size_t m = 0; m < methods.size(); ++m) {
      o.method = methods[m];
      const auto t0 = std::chrono::steady_clock::now();
      const auto ours = post::runTsne(features.data(), n, dim, o);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double kl = post::klDivergence(p, ours.embedding, threads);
      if (m == 0) {
        ourSeconds = seconds;
        ourKl = kl;
      }
      const std::string impl =
          std::string("metasemi ") + (o.method == post::TsneMethod::kExact ? "exact" : "bh");
      std::printf("%8zu %14s %10.2f %10.2f %10.2f %12.5f %10.5f %9s %9s\n", n, impl.c_str(),
                  ours.affinitySeconds, ours.optimizeSeconds, seconds, kl, ours.kl, "-", "-");
      std::fflush(stdout);
    }
    if (skipSklearn) continue;
    const auto sk = runSklearn(script, workDir, features.data(), n, dim, threads, seed);
    if (!sk.ok) {
      std::printf("%8zu %14s  (failed)\n", n, "scikit-learn");
      continue;
    }
    const double skKl = post::klDivergence(p, sk.embedding, threads);
    std::printf("%8zu %14s %10s %10s %10.2f %12.5f %10.5f %8.2fx %9.4f\n", n, "scikit-learn", "-",
                "-", sk.seconds, skKl, sk.ownKl, sk.seconds / ourSeconds, ourKl / skKl);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return benchMain(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "metasemi-bench-tsne: " << e.what() << "\n";
    return core::exitCodeFor(e);
  }
}
