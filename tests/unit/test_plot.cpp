// Figures: files exist, decode to the requested size, carry the drawn content; bad requests fail
// with one clear error and leave no file behind.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "metasemi/core/Error.h"
#include "metasemi/core/Random.h"
#include "metasemi/post/Plot.h"
#include "support/TestSupport.h"

using namespace metasemi;
namespace fs = std::filesystem;

namespace {

post::FeatureFigure syntheticFigure(std::size_t perSet, int classes) {
  core::Rng rng(17);
  post::FeatureFigure fig;
  auto fill = [&](std::vector<double>& pts, std::vector<int>& cls, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(i % classes);
      const double angle = 2.0 * M_PI * c / classes;
      pts.push_back(30.0 * std::cos(angle) + 4.0 * (rng.uniform() - 0.5));
      pts.push_back(30.0 * std::sin(angle) + 4.0 * (rng.uniform() - 0.5));
      cls.push_back(c);
    }
  };
  fill(fig.labeled, fig.labeledClass, perSet / 5);
  fill(fig.unlabeled, fig.unlabeledClass, perSet);
  fill(fig.test, fig.testClass, perSet);
  for (int c = 0; c < classes; ++c) fig.classNames.push_back("class name " + std::to_string(c));
  return fig;
}

bool startsWith(const fs::path& path, const std::string& magic) {
  std::ifstream f(path, std::ios::binary);
  std::string head(magic.size(), '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  return f && head == magic;
}

bool noTempFiles(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) return false;
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(feature_figure_png_and_pdf) {
  const fs::path dir = test::freshDir("plot_feature");
  const auto fig = syntheticFigure(2000, 10);
  post::plotFeatureFigure(fig, dir / "tsne.png", 1600, 450);
  post::plotFeatureFigure(fig, dir / "tsne.pdf", 1600, 450);
  const auto png = post::inspectPng(dir / "tsne.png");
  BOOST_CHECK_EQUAL(png.width, 1600);
  BOOST_CHECK_EQUAL(png.height, 450);
  BOOST_TEST_MESSAGE("feature figure: " << png.distinctColors << " colours, ink "
                                        << png.inkFraction);
  // Ten class colours, blue/grey/red, black text and frames, plus antialiased edges.
  BOOST_CHECK_GE(png.distinctColors, 14);
  BOOST_CHECK(startsWith(dir / "tsne.pdf", "%PDF-"));
  BOOST_CHECK_GT(fs::file_size(dir / "tsne.pdf"), 10000u);
  BOOST_CHECK(noTempFiles(dir));

  // The points are what makes the ink: the same figure without points has far less.
  post::FeatureFigure empty;
  empty.classNames = fig.classNames;
  post::plotFeatureFigure(empty, dir / "empty.png", 1600, 450);
  const auto blank = post::inspectPng(dir / "empty.png");
  BOOST_TEST_MESSAGE("empty figure ink " << blank.inkFraction);
  BOOST_CHECK_GT(png.inkFraction, blank.inkFraction + 0.03);
  BOOST_CHECK_GT(blank.inkFraction, 0.0);  // frames and titles are still drawn
}

BOOST_AUTO_TEST_CASE(more_classes_than_reference_colours) {
  const fs::path dir = test::freshDir("plot_many_classes");
  post::plotFeatureFigure(syntheticFigure(3000, 100), dir / "c100.png", 1200, 400);
  const auto png = post::inspectPng(dir / "c100.png");
  BOOST_CHECK_EQUAL(png.width, 1200);
  BOOST_CHECK_GE(png.distinctColors, 100);
  // Distinct classes get distinct colours.
  for (int a = 0; a < 100; ++a) {
    for (int b = a + 1; b < 100; ++b) {
      const auto ca = post::classColor(a), cb = post::classColor(b);
      BOOST_CHECK(std::abs(ca.r - cb.r) + std::abs(ca.g - cb.g) + std::abs(ca.b - cb.b) > 1e-3);
    }
  }
}

BOOST_AUTO_TEST_CASE(line_plot_png_and_pdf) {
  const fs::path dir = test::freshDir("plot_lines");
  post::LinePlot plot;
  plot.title = "CIFAR-10, 4000 labels";
  plot.xLabel = "step";
  plot.yLabel = "test error (%)";
  for (int r = 0; r < 3; ++r) {
    post::LineSeries s;
    s.label = "run " + std::to_string(r);
    for (int step = 400; step <= 40000; step += 400) {
      s.x.push_back(step);
      s.y.push_back(10.0 + 60.0 * std::exp(-step / 8000.0) + r);
    }
    plot.series.push_back(s);
  }
  post::plotLines(plot, dir / "error.png", 900, 600);
  post::plotLines(plot, dir / "error.pdf", 900, 600);
  const auto png = post::inspectPng(dir / "error.png");
  BOOST_CHECK_EQUAL(png.width, 900);
  BOOST_CHECK_EQUAL(png.height, 600);
  BOOST_CHECK_GE(png.distinctColors, 5);
  BOOST_CHECK_GT(png.inkFraction, 0.01);
  BOOST_CHECK_LT(png.inkFraction, 0.6);
  BOOST_CHECK(startsWith(dir / "error.pdf", "%PDF-"));

  post::LinePlot none = plot;
  none.series.clear();
  post::plotLines(none, dir / "none.png", 900, 600);
  BOOST_CHECK_GT(png.inkFraction, post::inspectPng(dir / "none.png").inkFraction);
}

BOOST_AUTO_TEST_CASE(bad_requests_fail_cleanly) {
  const fs::path dir = test::freshDir("plot_bad");
  auto fig = syntheticFigure(100, 10);
  BOOST_CHECK_THROW(post::plotFeatureFigure(fig, dir / "tsne.jpg"), core::ConfigError);
  BOOST_CHECK_THROW(post::plotFeatureFigure(fig, dir / "tsne.png", 20, 20), core::ConfigError);
  fig.testClass.pop_back();
  BOOST_CHECK_THROW(post::plotFeatureFigure(fig, dir / "tsne.png"), core::ConfigError);
  post::LinePlot plot;
  plot.series.push_back({"broken", {1, 2, 3}, {1, 2}});
  BOOST_CHECK_THROW(post::plotLines(plot, dir / "l.png"), core::ConfigError);
  plot.series[0].y.push_back(3);
  BOOST_CHECK_THROW(post::plotLines(plot, "/proc/metasemi-no-such-dir/l.png"), core::IoError);
  BOOST_CHECK_THROW(post::inspectPng(dir / "missing.png"), core::IoError);
  {
    std::ofstream f(dir / "fake.png");
    f << "not a png";
  }
  BOOST_CHECK_THROW(post::inspectPng(dir / "fake.png"), core::IoError);
  BOOST_CHECK(!fs::exists(dir / "tsne.png"));
  BOOST_CHECK(noTempFiles(dir));
}
