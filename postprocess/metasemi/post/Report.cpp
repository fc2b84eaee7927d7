#include "metasemi/post/Report.h"

#include <unistd.h>

#include <fmt/ranges.h>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>
#include <sstream>

#include "metasemi/core/Error.h"
#include "metasemi/io/RunDir.h"

namespace fs = std::filesystem;

namespace metasemi::post {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string shorten(const std::string& s) { return s.size() > 60 ? s.substr(0, 57) + "..." : s; }

std::map<std::string, std::string> parseConfig(const std::string& text, const fs::path& path) {
  std::istringstream in(text);
  std::map<std::string, std::string> config;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const auto eq = t.find('=');
    MS_REQUIRE(eq != std::string::npos && eq > 0, core::IoError,
               "{}:{}: expected 'key = value', found '{}'", path.string(), number, shorten(t));
    config[trim(t.substr(0, eq))] = trim(t.substr(eq + 1));
  }
  MS_REQUIRE(!config.empty(), core::IoError, "{}: empty (expected 'key = value' lines)",
             path.string());
  return config;
}

bool truthy(const std::string& v) {
  std::string s = v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s == "true" || s == "1" || s == "yes" || s == "on";
}

std::string configValue(const RunRecord& run, const std::string& key) {
  const auto it = run.config.find(key);
  return it == run.config.end() || it->second.empty() ? "-" : it->second;
}

// Numeric-aware ordering so that "1000" sorts before "10000" and "250" before "1000".
bool keyLess(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] == b[i]) continue;
    char* ea = nullptr;
    char* eb = nullptr;
    const double va = std::strtod(a[i].c_str(), &ea), vb = std::strtod(b[i].c_str(), &eb);
    if (!a[i].empty() && !b[i].empty() && *ea == '\0' && *eb == '\0' && va != vb) return va < vb;
    return a[i] < b[i];
  }
  return a.size() < b.size();
}

std::string cell(const Stat& s, const char* pm) {
  if (s.n == 0) return "-";
  if (s.n == 1) return fmt::format("{:.2f}", s.mean);
  return fmt::format("{:.2f}{}{:.2f}", s.mean, pm, s.std);
}

bool anyTop5(const std::vector<ReportRow>& rows) {
  return std::any_of(rows.begin(), rows.end(), [](const ReportRow& r) { return r.bestTop5.n > 0; });
}

std::string latexEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("&%$#_{}").find(c) != std::string::npos) {
      out += '\\';
      out += c;
    } else if (c == '~' || c == '^' || c == '\\') {
      out += "{\\textasciitilde}";
    } else {
      out += c;
    }
  }
  return out;
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csvNumber(double v, bool present) { return present ? fmt::format("{:.4f}", v) : ""; }

}  // namespace

RunRecord loadRun(const fs::path& dir) {
  MS_REQUIRE(fs::is_directory(dir), core::IoError, "{}: not a directory", dir.string());
  MS_REQUIRE(fs::directory_iterator(dir) != fs::directory_iterator(), core::IoError,
             "{}: empty run directory (expected config.cfg and metrics.jsonl)", dir.string());
  const io::RunDir runDir(dir);
  const fs::path metrics = runDir.path(io::RunDir::kMetrics);
  RunRecord run;
  run.dir = dir;
  run.config = parseConfig(runDir.readConfig(), runDir.path(io::RunDir::kConfig));
  const auto rows = runDir.readMetrics();
  std::map<long long, EvalPoint> byStep;
  for (const auto& r : rows) {
    const nlohmann::json& row = r.value;
    const int number = r.line;
    const std::string kind = row["kind"].get<std::string>();
    if (kind == "train") {
      ++run.trainRows;
      continue;
    }
    if (kind != "eval") continue;  // rows of kinds added later are not ours to judge
    MS_REQUIRE(row.contains("step") && row["step"].is_number_integer(), core::IoError,
               "{}:{}: eval row without an integer \"step\"", metrics.string(), number);
    MS_REQUIRE(row.contains("top1_error") && row["top1_error"].is_number(), core::IoError,
               "{}:{}: eval row without a numeric \"top1_error\"", metrics.string(), number);
    EvalPoint e;
    e.step = row["step"].get<long long>();
    e.top1 = row["top1_error"].get<double>();
    MS_REQUIRE(std::isfinite(e.top1) && e.top1 >= 0.0 && e.top1 <= 100.0, core::IoError,
               "{}:{}: top1_error must be a percentage in [0, 100], found {}", metrics.string(),
               number, e.top1);
    if (row.contains("top5_error") && row["top5_error"].is_number()) {
      e.top5 = row["top5_error"].get<double>();
    }
    byStep[e.step] = e;
  }
  MS_REQUIRE(!byStep.empty(), core::IoError,
             "{}: no evaluation rows (expected lines like {{\"kind\":\"eval\",\"step\":400,"
             "\"top1_error\":...}})",
             metrics.string());
  for (const auto& [step, e] : byStep) run.evals.push_back(e);
  return run;
}

std::vector<fs::path> findRuns(const fs::path& root) {
  MS_REQUIRE(fs::is_directory(root), core::IoError, "{}: not a directory", root.string());
  std::vector<fs::path> runs;
  if (io::RunDir::isRunDir(root)) runs.push_back(root);
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_directory() && io::RunDir::isRunDir(e.path())) {
      runs.push_back(e.path());
    }
  }
  std::sort(runs.begin(), runs.end());
  return runs;
}

Stat summarize(const std::vector<double>& values) {
  Stat s;
  s.n = values.size();
  if (s.n == 0) return s;
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(s.n);
  if (s.n > 1) {
    double ss = 0.0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(s.n - 1));
  }
  return s;
}

double median(std::vector<double> values) {
  MS_CHECK(!values.empty(), "median of nothing");
  std::sort(values.begin(), values.end());
  const std::size_t m = values.size() / 2;
  return values.size() % 2 == 1 ? values[m] : 0.5 * (values[m - 1] + values[m]);
}

RunFigures runFigures(const RunRecord& run, std::size_t k) {
  MS_CHECK(!run.evals.empty(), "run {} has no evaluations", run.dir.string());
  RunFigures f;
  f.best = run.evals.front().top1;
  for (const auto& e : run.evals) {
    f.best = std::min(f.best, e.top1);
    if (e.top5) f.bestTop5 = f.bestTop5 ? std::min(*f.bestTop5, *e.top5) : *e.top5;
  }
  f.last = run.evals.back().top1;
  const std::size_t take = std::min(std::max<std::size_t>(k, 1), run.evals.size());
  std::vector<double> tail;
  for (std::size_t i = run.evals.size() - take; i < run.evals.size(); ++i) {
    tail.push_back(run.evals[i].top1);
  }
  f.medianLastK = median(tail);
  return f;
}

std::optional<double> paperError(const std::map<std::string, std::string>& config) {
  auto get = [&](const char* key) {
    const auto it = config.find(key);
    return it == config.end() ? std::string() : it->second;
  };
  const std::string dataset = get("dataset"), method = get("method");
  const bool mixUp = truthy(get("mix-up"));
  const bool meta = method == "meta";
  if (method != "meta" && method != "baseline") return std::nullopt;
  long long labels = -1;
  try {
    labels = std::stoll(get("num-label"));
  } catch (const std::exception&) {
  }
  // reference-spec section 1: rows (baseline, meta only, mix-up only, meta + mix-up).
  struct Entry {
    const char* dataset;
    long long labels;
    double values[4];
  };
  static const Entry kTable[] = {{"svhn", 1000, {9.76, 3.68, 5.60, 3.15}},
                                 {"cifar10", 4000, {15.43, 11.63, 11.10, 7.78}},
                                 {"cifar100", 10000, {38.74, 35.40, 32.67, 30.74}}};
  for (const auto& e : kTable) {
    if (dataset == e.dataset && labels == e.labels) {
      return e.values[(mixUp ? 2 : 0) + (meta ? 1 : 0)];
    }
  }
  if (dataset == "imagenet") {
    if (meta && mixUp) return 44.87;
    if (!meta && !mixUp) return 53.65;
  }
  return std::nullopt;
}

std::vector<ReportRow> aggregate(const std::vector<RunRecord>& runs, const ReportOptions& options) {
  std::vector<ReportRow> rows;
  std::vector<std::vector<RunFigures>> figures;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::vector<std::string> key;
    for (const auto& k : options.groupBy) key.push_back(configValue(runs[r], k));
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const ReportRow& row) { return row.key == key; });
    if (it == rows.end()) {
      rows.push_back(ReportRow{});
      rows.back().key = key;
      figures.emplace_back();
      it = rows.end() - 1;
    }
    it->members.push_back(r);
    figures[static_cast<std::size_t>(it - rows.begin())].push_back(
        runFigures(runs[r], options.lastK));
  }
  for (std::size_t g = 0; g < rows.size(); ++g) {
    std::vector<double> best, last, med, top5;
    for (const auto& f : figures[g]) {
      best.push_back(f.best);
      last.push_back(f.last);
      med.push_back(f.medianLastK);
      if (f.bestTop5) top5.push_back(*f.bestTop5);
    }
    rows[g].runs = figures[g].size();
    rows[g].best = summarize(best);
    rows[g].last = summarize(last);
    rows[g].medianLastK = summarize(med);
    rows[g].bestTop5 = summarize(top5);
    if (options.paperColumn) rows[g].paper = paperError(runs[rows[g].members.front()].config);
  }
  std::sort(rows.begin(), rows.end(),
            [](const ReportRow& a, const ReportRow& b) { return keyLess(a.key, b.key); });
  return rows;
}

std::string toMarkdown(const std::vector<ReportRow>& rows, const ReportOptions& options) {
  const bool top5 = anyTop5(rows);
  std::ostringstream out;
  std::vector<std::string> head = options.groupBy;
  head.insert(head.end(), {"runs", "best top-1 error (%)", "last top-1 error (%)",
                           fmt::format("median of last {} (%)", options.lastK)});
  if (top5) head.push_back("best top-5 error (%)");
  if (options.paperColumn) head.push_back("paper (%)");
  out << "|";
  for (const auto& h : head) out << " " << h << " |";
  out << "\n|";
  for (std::size_t i = 0; i < head.size(); ++i) {
    out << (i < options.groupBy.size() ? " --- |" : " ---: |");
  }
  out << "\n";
  for (const auto& r : rows) {
    out << "|";
    for (const auto& k : r.key) out << " " << k << " |";
    out << " " << r.runs << " | " << cell(r.best, " ± ") << " | " << cell(r.last, " ± ") << " | "
        << cell(r.medianLastK, " ± ") << " |";
    if (top5) out << " " << cell(r.bestTop5, " ± ") << " |";
    if (options.paperColumn)
      out << " " << (r.paper ? fmt::format("{:.2f}", *r.paper) : "-") << " |";
    out << "\n";
  }
  out << "\nmean ± sample standard deviation over the runs (seeds) of each row; errors in "
         "percent.\n";
  return out.str();
}

std::string toCsv(const std::vector<ReportRow>& rows, const ReportOptions& options) {
  const bool top5 = anyTop5(rows);
  std::ostringstream out;
  for (const auto& k : options.groupBy) out << csvField(k) << ",";
  out << "runs,best_mean,best_std,last_mean,last_std,median_last_k_mean,median_last_k_std";
  if (top5) out << ",best_top5_mean,best_top5_std";
  if (options.paperColumn) out << ",paper";
  out << "\n";
  for (const auto& r : rows) {
    for (const auto& k : r.key) out << csvField(k) << ",";
    out << r.runs << "," << csvNumber(r.best.mean, true) << "," << csvNumber(r.best.std, true)
        << "," << csvNumber(r.last.mean, true) << "," << csvNumber(r.last.std, true) << ","
        << csvNumber(r.medianLastK.mean, true) << "," << csvNumber(r.medianLastK.std, true);
    if (top5) {
      out << "," << csvNumber(r.bestTop5.mean, r.bestTop5.n > 0) << ","
          << csvNumber(r.bestTop5.std, r.bestTop5.n > 0);
    }
    if (options.paperColumn) out << "," << (r.paper ? fmt::format("{:.2f}", *r.paper) : "");
    out << "\n";
  }
  return out.str();
}

std::string toLatex(const std::vector<ReportRow>& rows, const ReportOptions& options) {
  const bool top5 = anyTop5(rows);
  std::ostringstream out;
  std::string spec(options.groupBy.size(), 'l');
  spec += "r";
  spec += std::string(3 + (top5 ? 1 : 0) + (options.paperColumn ? 1 : 0), 'c');
  out << "% mean $\\pm$ sample std over seeds; errors in percent. Needs \\usepackage{booktabs}.\n";
  out << "\\begin{tabular}{" << spec << "}\n\\toprule\n";
  for (const auto& k : options.groupBy) out << latexEscape(k) << " & ";
  out << "runs & best & last & median last " << options.lastK;
  if (top5) out << " & best top-5";
  if (options.paperColumn) out << " & paper";
  out << " \\\\\n\\midrule\n";
  for (const auto& r : rows) {
    for (const auto& k : r.key) out << latexEscape(k) << " & ";
    out << r.runs << " & $" << cell(r.best, " \\pm ") << "$ & $" << cell(r.last, " \\pm ")
        << "$ & $" << cell(r.medianLastK, " \\pm ") << "$";
    if (top5) out << " & $" << cell(r.bestTop5, " \\pm ") << "$";
    if (options.paperColumn) out << " & " << (r.paper ? fmt::format("{:.2f}", *r.paper) : "--");
    out << " \\\\\n";
  }
  out << "\\bottomrule\n\\end{tabular}\n";
  return out.str();
}

LinePlot errorCurves(const std::vector<RunRecord>& runs, const ReportOptions& options) {
  LinePlot plot;
  plot.title = "test error";
  plot.xLabel = "step";
  plot.yLabel = "top-1 test error (%)";
  for (const auto& run : runs) {
    LineSeries s;
    std::vector<std::string> parts;
    for (const auto& k : options.groupBy) parts.push_back(configValue(run, k));
    parts.push_back("seed " + configValue(run, "seed"));
    s.label = fmt::format("{}", fmt::join(parts, " / "));
    for (const auto& e : run.evals) {
      s.x.push_back(static_cast<double>(e.step));
      s.y.push_back(e.top1);
    }
    plot.series.push_back(std::move(s));
  }
  return plot;
}

void writeTextAtomic(const fs::path& path, const std::string& text) {
  const fs::path tmp =
      path.parent_path() / ("." + path.filename().string() + ".tmp." + std::to_string(getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      MS_THROW(core::IoError, "{}: cannot write", path.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    MS_THROW(core::IoError, "{}: cannot write ({})", path.string(), ec.message());
  }
}

}  // namespace metasemi::post
