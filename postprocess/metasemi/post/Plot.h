// Figures drawn with cairo: the paper's Fig. 3 (t-SNE of labeled, unlabeled and test features)
// and line plots of test error against training step. The format follows the file extension
// (.png or .pdf); files are written under a temporary name and renamed when complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace metasemi::post {

/// An sRGB colour with components in [0, 1].
struct Rgb {
  double r = 0.0, g = 0.0, b = 0.0;
};

/// Colour of class `c`: the reference plot's ten colours (lightcoral, darkgreen, cadetblue,
/// darkorange, peru, cornflowerblue, khaki, magenta, gray, slategrey) for c < 10, then evenly
/// spread hues.
Rgb classColor(int c);

/// Input of Fig. 3: 2-D points (n x 2, row-major) of the three sets and their true classes.
struct FeatureFigure {
  std::vector<double> labeled, unlabeled, test;
  std::vector<int> labeledClass, unlabeledClass, testClass;
  /// Legend names of the classes; "class <c>" where missing.
  std::vector<std::string> classNames;
};

/// Draws Fig. 3: four framed panels sharing one scale: labeled, unlabeled and test points
/// coloured by class, then all three overlaid (unlabeled blue, test grey, labeled red, drawn in
/// that order as the reference does), with panel titles and legends. `width` x `height` are
/// pixels for PNG and points for PDF. Throws ConfigError for a bad size, extension or
/// mismatched lengths, IoError when the file cannot be written.
void plotFeatureFigure(const FeatureFigure& figure, const std::filesystem::path& path,
                       int width = 2400, int height = 680);

/// One curve of a line plot.
struct LineSeries {
  std::string label;
  std::vector<double> x, y;
};

/// A line plot with axes, ticks, grid and a legend.
struct LinePlot {
  std::string title, xLabel, yLabel;
  std::vector<LineSeries> series;
};

/// Draws `plot` to `path` (.png or .pdf), `width` x `height` pixels or points.
void plotLines(const LinePlot& plot, const std::filesystem::path& path, int width = 1000,
               int height = 650);

/// What a PNG file decodes to (through cairo): its size and how much of it is drawn.
struct PngSummary {
  int width = 0, height = 0;
  /// Number of distinct RGB colours (capped at 4096).
  int distinctColors = 0;
  /// Fraction of pixels that are not white.
  double inkFraction = 0.0;
};

/// Decodes the PNG at `path`; throws IoError when it is missing or not a PNG.
PngSummary inspectPng(const std::filesystem::path& path);

}  // namespace metasemi::post
