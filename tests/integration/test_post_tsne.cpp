// metasemi-tsne end to end on a features file: embedding saved and reusable, figure of the
// requested size; bad input ends with one line and a non-zero exit code; the program does not
// load LibTorch.
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/io/H5File.h"
#include "metasemi/post/Plot.h"
#include "support/TestSupport.h"

using namespace metasemi;
namespace fs = std::filesystem;

namespace {

// 4 classes as Gaussian blobs in 32-d; blocks of 4 rows are labeled (1 in 10), unlabeled or
// test.
void writeFeatures(const fs::path& path, std::size_t n, bool withSubset = true) {
  const std::size_t d = 32;
  core::Rng rng(8);
  auto normal = [&] {
    const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  };
  std::vector<double> centres(4 * d);
  for (auto& c : centres) c = 8.0 * normal();
  std::vector<float> x(n * d);
  std::vector<std::int64_t> labels(n);
  std::vector<std::uint8_t> subset(n);
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<std::int64_t>(i % 4);
    const std::size_t block = i / 4;  // every subset gets all four classes
    subset[i] = block % 10 == 0 ? 0 : (block % 2 == 0 ? 1 : 2);
    for (std::size_t t = 0; t < d; ++t) {
      x[i * d + t] = static_cast<float>(centres[labels[i] * d + t] + normal());
    }
  }
  io::H5File f(path.string(), io::H5File::Mode::kCreate);
  f.write("features", io::DType::kFloat32, x.data(),
          {static_cast<std::int64_t>(n), static_cast<std::int64_t>(d)});
  f.writeVector("labels", labels);
  if (withSubset) f.writeVector("subset", subset);
  f.setAttr("/", "class_names", std::vector<std::string>{"shirt", "shoe", "bag", "coat"});
}

std::string tool() { return test::binary("metasemi-tsne").string(); }

}  // namespace

BOOST_AUTO_TEST_CASE(features_to_embedding_and_figure) {
  const fs::path dir = test::freshDir("post_tsne");
  writeFeatures(dir / "features.h5", 1500);
  const auto r = test::runCommand(tool() + " --features " + (dir / "features.h5").string() +
                                  " --save-path " + (dir / "out").string() +
                                  " --threads 2 --num-point 300 --width 1200 --height 360");
  BOOST_TEST_MESSAGE(r.output);
  BOOST_REQUIRE_EQUAL(r.exitCode, 0);
  io::H5File emb((dir / "out" / "embedding.h5").string(), io::H5File::Mode::kRead);
  const auto info = emb.info("embedding");
  BOOST_REQUIRE_EQUAL(info.shape.size(), 2u);
  BOOST_CHECK_EQUAL(info.shape[0], 1500);
  BOOST_CHECK_EQUAL(info.shape[1], 2);
  BOOST_CHECK(emb.attrString("/", "method") == "barnes-hut");
  const double kl = emb.attrDouble("/", "kl");
  BOOST_CHECK(std::isfinite(kl) && kl > 0.0);
  const auto png = post::inspectPng(dir / "out" / "visualization.png");
  BOOST_CHECK_EQUAL(png.width, 1200);
  BOOST_CHECK_EQUAL(png.height, 360);
  BOOST_CHECK_GT(png.inkFraction, 0.02);
  BOOST_CHECK_GT(fs::file_size(dir / "out" / "visualization.pdf"), 1000u);

  // Re-plot from the saved embedding without running t-SNE again.
  const auto again =
      test::runCommand(tool() + " --embedding " + (dir / "out" / "embedding.h5").string() +
                       " --save-path " + (dir / "replot").string() + " --width 800 --height 300");
  BOOST_REQUIRE_EQUAL(again.exitCode, 0);
  BOOST_CHECK(again.output.find("iteration") == std::string::npos);
  BOOST_CHECK_EQUAL(post::inspectPng(dir / "replot" / "visualization.png").width, 800);
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_and_a_non_zero_exit) {
  const fs::path dir = test::freshDir("post_tsne_bad");
  writeFeatures(dir / "nosubset.h5", 200, false);
  writeFeatures(dir / "ok.h5", 200);
  struct Case {
    std::string args, expected;
    int code;
  };
  const std::string out = " --save-path " + (dir / "out").string();
  const std::vector<Case> cases = {
      {"--features " + (dir / "missing.h5").string() + out, "no such file", core::kExitIo},
      {"--features " + (dir / "nosubset.h5").string() + out, "no dataset 'subset'", core::kExitIo},
      {"--features " + (dir / "ok.h5").string() + out + " --num-point 0", "--num-point",
       core::kExitConfig},
      {"--features " + (dir / "ok.h5").string() + out + " --method fft", "--method",
       core::kExitConfig},
      {"--features " + (dir / "ok.h5").string() + out + " --perplexity 80", "perplexity",
       core::kExitConfig},
      {"--features " + (dir / "ok.h5").string(), "--save-path", core::kExitConfig},
  };
  for (const auto& c : cases) {
    const auto r = test::runCommand(tool() + " " + c.args);
    BOOST_TEST_MESSAGE(c.args << " -> " << r.exitCode << ": " << r.output);
    BOOST_CHECK_EQUAL(r.exitCode, c.code);
    BOOST_CHECK(r.output.rfind("metasemi-tsne: ", 0) == 0);
    BOOST_CHECK(r.output.find('\n') == r.output.size() - 1);
    BOOST_CHECK_MESSAGE(r.output.find(c.expected) != std::string::npos, r.output);
  }
  BOOST_CHECK(!fs::exists(dir / "out" / "embedding.h5"));
}

BOOST_AUTO_TEST_CASE(the_tool_does_not_load_libtorch) {
  // Loading LibTorch costs about a second per start, for a program that needs no tensors.
  auto libraries = [](const std::string& listing, const std::string& marker, char open,
                      char close) {
    std::vector<std::string> names;
    std::istringstream lines(listing);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(marker) == std::string::npos) continue;
      const auto a = line.find(open);
      const auto b = line.find(close, a + 1);
      if (a != std::string::npos && b != std::string::npos) {
        names.push_back(line.substr(a + 1, b - a - 1));
      }
    }
    return names;
  };
  auto isTorch = [](const std::string& name) {
    const std::string base = fs::path(name).filename().string();
    return base.rfind("libtorch", 0) == 0 || base.rfind("libc10", 0) == 0;
  };
  // Direct dependencies: "0x... (NEEDED)  Shared library: [libfoo.so.1]".
  const auto elf = test::runCommand("readelf -d " + tool());
  BOOST_REQUIRE_EQUAL(elf.exitCode, 0);
  const auto needed = libraries(elf.output, "(NEEDED)", '[', ']');
  // The C library is always there: an empty list would mean the listing was not understood.
  BOOST_REQUIRE(!needed.empty());
  for (const auto& lib : needed) BOOST_CHECK_MESSAGE(!isTorch(lib), "NEEDED " << lib);
  // Everything the loader brings in: "\tlibfoo.so.1 => /path/libfoo.so.1 (0x...)".
  const auto ldd = test::runCommand("ldd " + tool());
  BOOST_REQUIRE_EQUAL(ldd.exitCode, 0);
  std::istringstream lines(ldd.output);
  std::string line;
  std::size_t loaded = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first;
    if (!(words >> first)) continue;
    ++loaded;
    BOOST_CHECK_MESSAGE(!isTorch(first), "loads " << line);
  }
  BOOST_CHECK_GE(loaded, needed.size());
}
