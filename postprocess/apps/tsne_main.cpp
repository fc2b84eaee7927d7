// metasemi-tsne: features of the labeled, unlabeled and test images (an HDF5 file, see
// postprocess/README.md) -> 2-D t-SNE embedding (saved for reuse) -> the paper's Fig. 3 as PNG
// and PDF.
#include <boost/program_options.hpp>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "metasemi/app/CommandLine.h"
#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"
#include "metasemi/core/Random.h"
#include "metasemi/io/H5File.h"
#include "metasemi/post/Plot.h"
#include "metasemi/post/Tsne.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace metasemi;

namespace {

struct Features {
  std::vector<float> x;  // n x d
  std::size_t n = 0, d = 0;
  std::vector<std::int64_t> labels;
  std::vector<std::uint8_t> subset;  // 0 labeled, 1 unlabeled, 2 test
  std::vector<std::string> classNames;
};

void requireDataset(const io::H5File& f, const std::string& file, const char* name,
                    const char* what) {
  MS_REQUIRE(f.isDataset(name), core::IoError, "{}: no dataset '{}' ({})", file, name, what);
}

// Labels and subsets of a features or embedding file, checked against n rows.
void readLabels(const io::H5File& f, const std::string& file, std::size_t n, Features& out) {
  requireDataset(f, file, "labels", "int64 class of each row");
  requireDataset(f, file, "subset", "uint8 per row: 0 labeled, 1 unlabeled, 2 test");
  out.labels = f.readVector<std::int64_t>("labels");
  out.subset = f.readVector<std::uint8_t>("subset");
  MS_REQUIRE(out.labels.size() == n && out.subset.size() == n, core::IoError,
             "{}: expected {} labels and subsets (one per row), found {} and {}", file, n,
             out.labels.size(), out.subset.size());
  for (std::size_t i = 0; i < n; ++i) {
    MS_REQUIRE(out.subset[i] <= 2, core::IoError,
               "{}: subset[{}] = {}, expected 0 (labeled), 1 (unlabeled) or 2 (test)", file, i,
               int(out.subset[i]));
    MS_REQUIRE(out.labels[i] >= 0 && out.labels[i] < 100000, core::IoError,
               "{}: labels[{}] = {}, expected a class index >= 0", file, i, out.labels[i]);
  }
  if (f.hasAttr("/", "class_names")) out.classNames = f.attrStrings("/", "class_names");
}

Features readFeatures(const std::string& file) {
  core::requireFile(file, "--features");
  io::H5File f(file, io::H5File::Mode::kRead);
  requireDataset(f, file, "features", "float32 rows x feature dimension");
  const auto info = f.infoForRead("features");
  MS_REQUIRE(info.shape.size() == 2 && info.shape[0] >= 1 && info.shape[1] >= 1, core::IoError,
             "{}: 'features' must be 2-d (rows x dimension), found {} dimensions", file,
             info.shape.size());
  Features out;
  out.n = static_cast<std::size_t>(info.shape[0]);
  out.d = static_cast<std::size_t>(info.shape[1]);
  out.x.resize(out.n * out.d);
  f.read("features", io::DType::kFloat32, out.x.data(), static_cast<std::int64_t>(out.x.size()));
  for (float v : out.x) {
    MS_REQUIRE(std::isfinite(v), core::IoError, "{}: 'features' holds a non-finite value", file);
  }
  readLabels(f, file, out.n, out);
  return out;
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

int tsneMain(int argc, char** argv) {
  std::string featuresPath, embeddingPath, savePath, method, classNames;
  long long numPoint = -1;
  int threads = 0, iterations = 1000, width = 2400, height = 680;
  double perplexity = 30.0;
  std::uint64_t seed = 0;
  po::options_description opts(
      "Usage: metasemi-tsne --features FILE.h5 --save-path DIR [options]\n"
      "Embeds features with t-SNE and draws the labeled / unlabeled / test figure.\nOptions");
  opts.add_options()("help,h", "show this help")(
      "features", po::value(&featuresPath),
      "HDF5 file with 'features' (float32 n x d), 'labels' (int64 n), 'subset' (uint8 n)")(
      "embedding", po::value(&embeddingPath),
      "reuse a saved embedding.h5 instead of running t-SNE (plots only)")(
      "save-path", po::value(&savePath), "folder for embedding.h5 and visualization.png/.pdf")(
      "num-point", po::value(&numPoint),
      "plot at most this many unlabeled and this many test points (all labeled points are "
      "plotted); t-SNE always runs on every row")(
      "perplexity", po::value(&perplexity)->default_value(30.0), "t-SNE perplexity")(
      "iterations", po::value(&iterations)->default_value(1000), "t-SNE iterations")(
      "method", po::value(&method)->default_value("auto"), "auto | exact | barnes-hut")(
      "seed", po::value(&seed)->default_value(0), "seed of the plotting subsample")(
      "threads", po::value(&threads)->default_value(0), "worker threads (0 = all cores)")(
      "class-names", po::value(&classNames),
      "comma-separated legend names (default: the file's class_names attribute)")(
      "width", po::value(&width)->default_value(2400), "figure width (PNG pixels, PDF points)")(
      "height", po::value(&height)->default_value(680), "figure height");
  po::variables_map vm;
  if (!app::parseCommandLine(argc, argv, opts, vm)) return core::kExitOk;
  MS_REQUIRE(vm.count("features") + vm.count("embedding") == 1, core::ConfigError,
             "give exactly one of --features and --embedding (see --help)");
  MS_REQUIRE(vm.count("save-path"), core::ConfigError, "--save-path is required (see --help)");
  MS_REQUIRE(!vm.count("num-point") || numPoint >= 1, core::ConfigError,
             "--num-point: expected a count >= 1, got {}", numPoint);
  post::TsneOptions options;
  options.perplexity = perplexity;
  options.iterations = iterations;
  options.threads = threads;
  options.exaggerationIterations = std::min(250, iterations);
  if (method == "exact") {
    options.method = post::TsneMethod::kExact;
  } else if (method == "barnes-hut") {
    options.method = post::TsneMethod::kBarnesHut;
  } else {
    MS_REQUIRE(method == "auto", core::ConfigError,
               "--method: expected auto, exact or barnes-hut, got '{}'", method);
  }

  const fs::path out(savePath);
  std::error_code ec;
  fs::create_directories(out, ec);
  MS_REQUIRE(fs::is_directory(out), core::IoError, "--save-path {}: cannot create", savePath);

  Features data;
  std::vector<double> y;
  if (vm.count("features")) {
    data = readFeatures(featuresPath);
    options.validate(data.n);
    std::cerr << fmt::format("metasemi-tsne: {} points of dimension {}\n", data.n, data.d);
    options.progress = [](int it, double kl) {
      std::cerr << fmt::format("metasemi-tsne: iteration {:4d}  KL {:.5f}\n", it, kl);
    };
    const auto result = post::runTsne(data.x.data(), data.n, data.d, options);
    std::cerr << fmt::format(
        "metasemi-tsne: {} t-SNE, KL {:.5f}, affinities {:.1f} s, optimisation {:.1f} s\n",
        post::toString(result.method), result.kl, result.affinitySeconds, result.optimizeSeconds);
    y = result.embedding;
    io::AtomicOutput file((out / "embedding.h5").string());
    {
      io::H5File h5(file.tempPath(), io::H5File::Mode::kCreate);
      h5.write("embedding", io::DType::kFloat64, y.data(), {static_cast<std::int64_t>(data.n), 2});
      h5.writeVector("labels", data.labels);
      h5.writeVector("subset", data.subset);
      if (!data.classNames.empty()) h5.setAttr("/", "class_names", data.classNames);
      h5.setAttr("/", "kl", result.kl);
      h5.setAttr("/", "method", post::toString(result.method));
      h5.setAttr("/", "perplexity", perplexity);
      h5.setAttr("/", "iterations", static_cast<std::int64_t>(iterations));
      h5.setAttr("/", "features", featuresPath);
    }
    file.commit();
  } else {
    core::requireFile(embeddingPath, "--embedding");
    io::H5File h5(embeddingPath, io::H5File::Mode::kRead);
    requireDataset(h5, embeddingPath, "embedding", "float64 rows x 2");
    const auto info = h5.info("embedding");
    MS_REQUIRE(info.shape.size() == 2 && info.shape[1] == 2, core::IoError,
               "{}: 'embedding' must be rows x 2", embeddingPath);
    data.n = static_cast<std::size_t>(info.shape[0]);
    y.resize(2 * data.n);
    h5.read("embedding", io::DType::kFloat64, y.data(), static_cast<std::int64_t>(y.size()));
    readLabels(h5, embeddingPath, data.n, data);
  }

  // Subsample unlabeled and test points for plotting only, as the reference does.
  core::Rng rng(core::deriveSeed(seed, {0x9107}));
  post::FeatureFigure fig;
  fig.classNames = vm.count("class-names") ? splitList(classNames) : data.classNames;
  std::vector<std::size_t> bySubset[3];
  for (std::size_t i = 0; i < data.n; ++i) bySubset[data.subset[i]].push_back(i);
  for (int s = 1; s <= 2; ++s) {
    if (numPoint > 0 && bySubset[s].size() > static_cast<std::size_t>(numPoint)) {
      core::shuffle(bySubset[s], rng);
      bySubset[s].resize(static_cast<std::size_t>(numPoint));
    }
  }
  std::vector<double>* pts[3] = {&fig.labeled, &fig.unlabeled, &fig.test};
  std::vector<int>* cls[3] = {&fig.labeledClass, &fig.unlabeledClass, &fig.testClass};
  for (int s = 0; s < 3; ++s) {
    for (std::size_t i : bySubset[s]) {
      pts[s]->push_back(y[2 * i]);
      pts[s]->push_back(y[2 * i + 1]);
      cls[s]->push_back(static_cast<int>(data.labels[i]));
    }
  }
  post::plotFeatureFigure(fig, out / "visualization.png", width, height);
  post::plotFeatureFigure(fig, out / "visualization.pdf", width, height);
  std::cerr << fmt::format("metasemi-tsne: wrote {}\n", (out / "visualization.png").string());
  return core::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return app::runProgram("metasemi-tsne", [&] { return tsneMain(argc, argv); });
}
