#include "metasemi/post/Plot.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>

#include "metasemi/core/Error.h"
#include "metasemi/core/Files.h"

namespace fs = std::filesystem;

namespace metasemi::post {
namespace {

constexpr Rgb kReferenceColors[10] = {
    {240 / 255.0, 128 / 255.0, 128 / 255.0},  // lightcoral
    {0 / 255.0, 100 / 255.0, 0 / 255.0},      // darkgreen
    {95 / 255.0, 158 / 255.0, 160 / 255.0},   // cadetblue
    {255 / 255.0, 140 / 255.0, 0 / 255.0},    // darkorange
    {205 / 255.0, 133 / 255.0, 63 / 255.0},   // peru
    {100 / 255.0, 149 / 255.0, 237 / 255.0},  // cornflowerblue
    {240 / 255.0, 230 / 255.0, 140 / 255.0},  // khaki
    {255 / 255.0, 0 / 255.0, 255 / 255.0},    // magenta
    {128 / 255.0, 128 / 255.0, 128 / 255.0},  // gray
    {112 / 255.0, 128 / 255.0, 144 / 255.0},  // slategrey
};
// matplotlib's default cycle, for line plots.
constexpr Rgb kLineColors[10] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};
constexpr Rgb kBlue{0.0, 0.0, 1.0}, kGrey{0.502, 0.502, 0.502}, kRed{1.0, 0.0, 0.0};

enum class Format { kPng, kPdf };

Format formatOf(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".png") return Format::kPng;
  if (ext == ".pdf") return Format::kPdf;
  MS_THROW(core::ConfigError, "{}: expected a figure file name ending in .png or .pdf",
           path.string());
}

// Draws through `draw` onto a surface of the path's format and renames the finished file into
// place, so a reader never sees a half-written figure.
void renderTo(const fs::path& path, int width, int height,
              const std::function<void(cairo_t*)>& draw) {
  MS_REQUIRE(width >= 100 && height >= 100 && width <= 20000 && height <= 20000, core::ConfigError,
             "{}: figure size must be within 100..20000, got {} x {}", path.string(), width,
             height);
  const Format format = formatOf(path);
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
  }
  const fs::path tmp =
      path.parent_path() / ("." + path.filename().string() + ".tmp." + std::to_string(getpid()));
  cairo_surface_t* surface = format == Format::kPng
                                 ? cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height)
                                 : cairo_pdf_surface_create(tmp.c_str(), width, height);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  draw(cr);
  cairo_status_t status = cairo_status(cr);
  cairo_destroy(cr);
  if (status == CAIRO_STATUS_SUCCESS && format == Format::kPng) {
    status = cairo_surface_write_to_png(surface, tmp.c_str());
  }
  cairo_surface_finish(surface);
  if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  std::error_code ec;
  if (status != CAIRO_STATUS_SUCCESS) {
    fs::remove(tmp, ec);
    MS_THROW(core::IoError, "{}: cannot write the figure ({})", path.string(),
             cairo_status_to_string(status));
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    MS_THROW(core::IoError, "{}: cannot write the figure ({})", path.string(), ec.message());
  }
}

void setColor(cairo_t* cr, const Rgb& c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

void drawText(cairo_t* cr, const std::string& text, double x, double y, double size,
              double alignX = 0.0, double alignY = 0.0, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  cairo_move_to(cr, x - alignX * ext.width - ext.x_bearing,
                y - alignY * ext.height - ext.y_bearing);
  cairo_show_text(cr, text.c_str());
}

double textWidth(cairo_t* cr, const std::string& text, double size) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  return ext.x_advance;
}

struct Box {
  double x0, y0, x1, y1;  // device coordinates, y down
};

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // Widened by `margin` of the span on each side; a single value gets a unit span.
  void pad(double margin) {
    if (!(lo <= hi)) {
      lo = 0.0;
      hi = 1.0;
    }
    const double span = hi > lo ? hi - lo : 1.0;
    lo -= margin * span;
    hi += margin * span;
  }
};

void frame(cairo_t* cr, const Box& b, double lineWidth) {
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, lineWidth);
  cairo_rectangle(cr, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
  cairo_stroke(cr);
}

void scatter(cairo_t* cr, const Box& box, const Range& rx, const Range& ry,
             const std::vector<double>& pts, const std::function<Rgb(std::size_t)>& color,
             double radius) {
  cairo_save(cr);
  cairo_rectangle(cr, box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
  cairo_clip(cr);
  const double sx = (box.x1 - box.x0) / (rx.hi - rx.lo), sy = (box.y1 - box.y0) / (ry.hi - ry.lo);
  for (std::size_t i = 0; i < pts.size() / 2; ++i) {
    const double px = box.x0 + (pts[2 * i] - rx.lo) * sx;
    const double py = box.y1 - (pts[2 * i + 1] - ry.lo) * sy;
    if (!std::isfinite(px) || !std::isfinite(py)) continue;
    setColor(cr, color(i));
    cairo_new_path(cr);
    cairo_arc(cr, px, py, radius, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  cairo_restore(cr);
}

// A row of legend entries (coloured disc + name) centred in [x0, x1] at height y, wrapped onto
// further rows when wider than the space.
void legendRow(cairo_t* cr, const std::vector<std::pair<Rgb, std::string>>& entries, double x0,
               double x1, double y, double size) {
  const double disc = size * 0.4, gap = size * 1.2;
  std::vector<std::vector<std::size_t>> rows(1);
  double width = 0.0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const double w = 2 * disc + size * 0.4 + textWidth(cr, entries[i].second, size) + gap;
    if (width + w > x1 - x0 && !rows.back().empty()) {
      rows.emplace_back();
      width = 0.0;
    }
    rows.back().push_back(i);
    width += w;
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    double total = 0.0;
    for (auto i : rows[r]) {
      total += 2 * disc + size * 0.4 + textWidth(cr, entries[i].second, size) + gap;
    }
    double x = x0 + std::max(0.0, (x1 - x0 - total + gap) / 2);
    const double cy = y + r * size * 1.5;
    for (auto i : rows[r]) {
      setColor(cr, entries[i].first);
      cairo_new_path(cr);
      cairo_arc(cr, x + disc, cy, disc, 0, 2 * M_PI);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      drawText(cr, entries[i].second, x + 2 * disc + size * 0.4, cy, size, 0.0, 0.5);
      x += 2 * disc + size * 0.4 + textWidth(cr, entries[i].second, size) + gap;
    }
  }
}

// Ticks at 1, 2 or 5 times a power of ten, about `target` of them over [lo, hi].
std::vector<double> niceTicks(double lo, double hi, int target) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (span / step <= target) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) {
    ticks.push_back(std::abs(t) < 1e-12 * span ? 0.0 : t);
  }
  return ticks;
}

std::string tickLabel(double v) {
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-3)) return fmt::format("{:.1e}", v);
  std::string s = fmt::format("{:.4f}", v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void checkPoints(const std::vector<double>& pts, const std::vector<int>& cls, const char* what) {
  MS_REQUIRE(pts.size() % 2 == 0 && cls.size() == pts.size() / 2, core::ConfigError,
             "feature figure: the {} set has {} coordinates for {} classes (expected 2 per point)",
             what, pts.size(), cls.size());
}

}  // namespace

Rgb classColor(int c) {
  if (c >= 0 && c < 10) return kReferenceColors[c];
  // Golden-angle hues, mid saturation and value, for datasets with more classes.
  const double h = std::fmod(std::abs(c) * 137.508, 360.0) / 60.0;
  const double s = 0.65, v = 0.85, chroma = v * s;
  const double x = chroma * (1 - std::abs(std::fmod(h, 2.0) - 1));
  const double m = v - chroma;
  const int sector = static_cast<int>(h) % 6;
  const double rgb[6][3] = {{chroma, x, 0}, {x, chroma, 0}, {0, chroma, x},
                            {0, x, chroma}, {x, 0, chroma}, {chroma, 0, x}};
  return {rgb[sector][0] + m, rgb[sector][1] + m, rgb[sector][2] + m};
}

void plotFeatureFigure(const FeatureFigure& fig, const fs::path& path, int width, int height) {
  checkPoints(fig.labeled, fig.labeledClass, "labeled");
  checkPoints(fig.unlabeled, fig.unlabeledClass, "unlabeled");
  checkPoints(fig.test, fig.testClass, "test");
  Range rx, ry;
  int maxClass = -1;
  for (const auto* pts : {&fig.labeled, &fig.unlabeled, &fig.test}) {
    for (std::size_t i = 0; i < pts->size() / 2; ++i) {
      rx.add((*pts)[2 * i]);
      ry.add((*pts)[2 * i + 1]);
    }
  }
  for (const auto* cls : {&fig.labeledClass, &fig.unlabeledClass, &fig.testClass}) {
    for (int c : *cls) maxClass = std::max(maxClass, c);
  }
  rx.pad(0.03);
  ry.pad(0.03);
  renderTo(path, width, height, [&](cairo_t* cr) {
    const double W = width, H = height;
    const double font = std::max(9.0, H * 0.03);
    const double top = font * 2.2;
    const int classes = maxClass + 1;
    const double legendRows = classes > 10 ? 3.0 : 1.0;
    const double bottom = font * (1.8 + 1.5 * legendRows);
    const double gap = W * 0.012;
    const double panelW = (W - 5 * gap) / 4.0;
    const double panelH = H - top - bottom;
    const double radius = std::max(1.0, std::min(W, 4 * H) / 1100.0);
    const char* titles[4] = {"labeled", "unlabeled", "test", "all sets"};
    std::vector<Box> boxes;
    for (int p = 0; p < 4; ++p) {
      const double x0 = gap + p * (panelW + gap);
      boxes.push_back({x0, top, x0 + panelW, top + panelH});
      cairo_set_source_rgb(cr, 0, 0, 0);
      drawText(cr, titles[p], x0 + panelW / 2, top - font * 0.6, font, 0.5, 1.0, true);
    }
    scatter(
        cr, boxes[0], rx, ry, fig.labeled,
        [&](std::size_t i) { return classColor(fig.labeledClass[i]); }, radius);
    scatter(
        cr, boxes[1], rx, ry, fig.unlabeled,
        [&](std::size_t i) { return classColor(fig.unlabeledClass[i]); }, radius);
    scatter(
        cr, boxes[2], rx, ry, fig.test, [&](std::size_t i) { return classColor(fig.testClass[i]); },
        radius);
    scatter(
        cr, boxes[3], rx, ry, fig.unlabeled, [](std::size_t) { return kBlue; }, radius);
    scatter(
        cr, boxes[3], rx, ry, fig.test, [](std::size_t) { return kGrey; }, radius);
    scatter(
        cr, boxes[3], rx, ry, fig.labeled, [](std::size_t) { return kRed; }, radius);
    for (const auto& b : boxes) frame(cr, b, std::max(1.0, H / 600.0));
    std::vector<std::pair<Rgb, std::string>> classEntries;
    for (int c = 0; c < classes; ++c) {
      classEntries.emplace_back(classColor(c), c < static_cast<int>(fig.classNames.size())
                                                   ? fig.classNames[c]
                                                   : fmt::format("class {}", c));
    }
    const double legendY = top + panelH + font * 1.3;
    legendRow(cr, classEntries, boxes[0].x0, boxes[2].x1, legendY, font * 0.85);
    legendRow(cr, {{kRed, "labeled"}, {kBlue, "unlabeled"}, {kGrey, "test"}}, boxes[3].x0,
              boxes[3].x1, legendY, font * 0.85);
  });
}

void plotLines(const LinePlot& plot, const fs::path& path, int width, int height) {
  Range rx, ry;
  for (const auto& s : plot.series) {
    MS_REQUIRE(s.x.size() == s.y.size(), core::ConfigError,
               "line plot: series '{}' has {} x values and {} y values", s.label, s.x.size(),
               s.y.size());
    for (double v : s.x) rx.add(v);
    for (double v : s.y) ry.add(v);
  }
  rx.pad(0.02);
  ry.pad(0.05);
  renderTo(path, width, height, [&](cairo_t* cr) {
    const double W = width, H = height;
    const double font = std::max(9.0, std::min(W, H) * 0.028);
    const Box box{font * 5.5, font * (plot.title.empty() ? 1.0 : 2.6), W - font * 1.2,
                  H - font * 4.0};
    const double sx = (box.x1 - box.x0) / (rx.hi - rx.lo), sy = (box.y1 - box.y0) / (ry.hi - ry.lo);
    auto X = [&](double v) { return box.x0 + (v - rx.lo) * sx; };
    auto Y = [&](double v) { return box.y1 - (v - ry.lo) * sy; };
    cairo_set_line_width(cr, 1.0);
    for (double t : niceTicks(rx.lo, rx.hi, 6)) {
      cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
      cairo_move_to(cr, X(t), box.y0);
      cairo_line_to(cr, X(t), box.y1);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      cairo_move_to(cr, X(t), box.y1);
      cairo_line_to(cr, X(t), box.y1 + font * 0.4);
      cairo_stroke(cr);
      drawText(cr, tickLabel(t), X(t), box.y1 + font * 0.6, font * 0.8, 0.5, 0.0);
    }
    for (double t : niceTicks(ry.lo, ry.hi, 6)) {
      cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
      cairo_move_to(cr, box.x0, Y(t));
      cairo_line_to(cr, box.x1, Y(t));
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      cairo_move_to(cr, box.x0 - font * 0.4, Y(t));
      cairo_line_to(cr, box.x0, Y(t));
      cairo_stroke(cr);
      drawText(cr, tickLabel(t), box.x0 - font * 0.6, Y(t), font * 0.8, 1.0, 0.5);
    }
    cairo_save(cr);
    cairo_rectangle(cr, box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
    cairo_clip(cr);
    cairo_set_line_width(cr, std::max(1.5, H / 400.0));
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (std::size_t k = 0; k < plot.series.size(); ++k) {
      const auto& s = plot.series[k];
      setColor(cr, kLineColors[k % 10]);
      bool started = false;
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
          started = false;
          continue;
        }
        if (started) {
          cairo_line_to(cr, X(s.x[i]), Y(s.y[i]));
        } else {
          cairo_move_to(cr, X(s.x[i]), Y(s.y[i]));
          started = true;
        }
      }
      cairo_stroke(cr);
      if (s.x.size() == 1) {
        cairo_arc(cr, X(s.x[0]), Y(s.y[0]), 3.0, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
    cairo_restore(cr);
    frame(cr, box, 1.2);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (!plot.title.empty()) {
      drawText(cr, plot.title, (box.x0 + box.x1) / 2, box.y0 - font * 0.7, font, 0.5, 1.0, true);
    }
    drawText(cr, plot.xLabel, (box.x0 + box.x1) / 2, H - font * 0.5, font * 0.9, 0.5, 1.0);
    cairo_save(cr);
    cairo_translate(cr, font * 0.5, (box.y0 + box.y1) / 2);
    cairo_rotate(cr, -M_PI / 2);
    drawText(cr, plot.yLabel, 0, 0, font * 0.9, 0.5, 0.0);
    cairo_restore(cr);
    if (!plot.series.empty()) {
      const double size = font * 0.8;
      double wMax = 0.0;
      for (const auto& s : plot.series) wMax = std::max(wMax, textWidth(cr, s.label, size));
      const double line = size * 1.5;
      const double lw = size * 2.5 + wMax + size, lh = line * plot.series.size() + size * 0.6;
      const double lx = box.x1 - lw - size * 0.5, ly = box.y0 + size * 0.5;
      cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
      cairo_rectangle(cr, lx, ly, lw, lh);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
      cairo_set_line_width(cr, 1.0);
      cairo_rectangle(cr, lx, ly, lw, lh);
      cairo_stroke(cr);
      for (std::size_t k = 0; k < plot.series.size(); ++k) {
        const double cy = ly + size * 0.3 + line * (k + 0.5);
        setColor(cr, kLineColors[k % 10]);
        cairo_set_line_width(cr, std::max(1.5, H / 400.0));
        cairo_move_to(cr, lx + size * 0.4, cy);
        cairo_line_to(cr, lx + size * 2.0, cy);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        drawText(cr, plot.series[k].label, lx + size * 2.5, cy, size, 0.0, 0.5);
      }
    }
  });
}

PngSummary inspectPng(const fs::path& path) {
  core::requireFile(path);
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  const cairo_status_t status = cairo_surface_status(s);
  if (status != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    MS_THROW(core::IoError, "{}: not a readable PNG ({})", path.string(),
             cairo_status_to_string(status));
  }
  cairo_surface_flush(s);
  PngSummary out;
  out.width = cairo_image_surface_get_width(s);
  out.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  const cairo_format_t format = cairo_image_surface_get_format(s);
  std::set<std::uint32_t> colors;
  std::size_t ink = 0;
  for (int y = 0; y < out.height; ++y) {
    const auto* row = reinterpret_cast<const std::uint32_t*>(data + y * stride);
    for (int x = 0; x < out.width; ++x) {
      // Premultiplied ARGB; transparent counts as white paper.
      std::uint32_t px = row[x];
      if (format == CAIRO_FORMAT_ARGB32 && (px >> 24) == 0) px = 0xffffffffu;
      const std::uint32_t rgb = px & 0xffffffu;
      if (rgb != 0xffffffu) ++ink;
      if (colors.size() < 4096) colors.insert(rgb);
    }
  }
  cairo_surface_destroy(s);
  out.distinctColors = static_cast<int>(colors.size());
  out.inkFraction = out.width > 0 && out.height > 0
                        ? static_cast<double>(ink) / (double(out.width) * out.height)
                        : 0.0;
  return out;
}

}  // namespace metasemi::post
