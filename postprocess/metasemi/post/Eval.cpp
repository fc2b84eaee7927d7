#include "metasemi/post/Eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "metasemi/core/Error.h"

namespace metasemi::post {
namespace {

nlohmann::json orNull(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string percentOrNa(const std::optional<double>& v) {
  return v ? fmt::format("{:.2f}%", *v) : "n/a";
}

// The trainer writes NaN and infinity (no evaluation yet) as null.
std::optional<double> finiteNumber(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  const double v = j[key].get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

}  // namespace

EvalReport makeEvalReport(const EvalCounts& counts, const std::vector<std::string>& classNames) {
  EvalReport r;
  r.images = counts.images();
  MS_REQUIRE(r.images > 0, core::IoError, "no image was evaluated (empty split)");
  r.classes = counts.numClasses();
  r.topK = counts.topK();
  r.correct = counts.correct();
  r.topKCorrect = counts.topKCorrect();
  const auto n = static_cast<double>(r.images);
  // The trainer's formula, so that equal counts give bit-equal errors.
  r.top1Error = 100.0 - 100.0 * static_cast<double>(r.correct) / n;
  if (r.classes >= r.topK) r.topKError = 100.0 - 100.0 * static_cast<double>(r.topKCorrect) / n;
  r.confusion.reserve(static_cast<std::size_t>(r.classes * r.classes));
  for (std::int64_t t = 0; t < r.classes; ++t) {
    ClassError c;
    if (static_cast<std::int64_t>(classNames.size()) == r.classes) {
      c.name = classNames[static_cast<std::size_t>(t)];
    }
    for (std::int64_t p = 0; p < r.classes; ++p) {
      const std::int64_t v = counts.confusion(t, p);
      r.confusion.push_back(v);
      c.images += v;
      if (p != t) c.errors += v;
    }
    if (c.images > 0) {
      c.errorPercent = 100.0 * static_cast<double>(c.errors) / static_cast<double>(c.images);
    }
    r.perClass.push_back(c);
  }
  return r;
}

RecordedErrors parseRecordedErrors(const std::string& runStateJson) {
  RecordedErrors e;
  const nlohmann::json j = nlohmann::json::parse(runStateJson, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return e;
  e.bestTop1 = finiteNumber(j, "best_top1_error");
  e.bestTop5 = finiteNumber(j, "best_top5_error");
  e.lastTop1 = finiteNumber(j, "last_top1_error");
  e.lastTop5 = finiteNumber(j, "last_top5_error");
  return e;
}

std::string toJson(const EvalReport& r) {
  nlohmann::json perClass = nlohmann::json::array();
  for (std::size_t k = 0; k < r.perClass.size(); ++k) {
    const ClassError& c = r.perClass[k];
    perClass.push_back({{"class", k},
                        {"name", c.name},
                        {"images", c.images},
                        {"errors", c.errors},
                        {"error", orNull(c.errorPercent)}});
  }
  nlohmann::json confusion = nlohmann::json::array();
  for (std::int64_t t = 0; t < r.classes; ++t) {
    const auto row = r.confusion.begin() + t * r.classes;
    confusion.push_back(std::vector<std::int64_t>(row, row + r.classes));
  }
  const nlohmann::json j = {{"checkpoint", r.checkpoint},
                            {"step", r.step},
                            {"architecture", r.architecture},
                            {"dataset", r.dataset},
                            {"data_path", r.dataPath},
                            {"split", r.split},
                            {"images", r.images},
                            {"classes", r.classes},
                            {"correct", r.correct},
                            {"top1_error", r.top1Error},
                            {"top_k", r.topK},
                            {"top_k_correct", r.topKCorrect},
                            {"top_k_error", orNull(r.topKError)},
                            {"per_class", perClass},
                            {"confusion", confusion},
                            {"recorded",
                             {{"best_top1_error", orNull(r.recorded.bestTop1)},
                              {"best_top5_error", orNull(r.recorded.bestTop5)},
                              {"last_top1_error", orNull(r.recorded.lastTop1)},
                              {"last_top5_error", orNull(r.recorded.lastTop5)}}}};
  return j.dump(2) + "\n";
}

std::string formatEvalReport(const EvalReport& r) {
  std::string s =
      fmt::format("{} (step {}, {} {}) on split '{}' of {}: {} images, {} classes\n", r.checkpoint,
                  r.step, r.architecture, r.dataset, r.split, r.dataPath, r.images, r.classes);
  s += fmt::format("top-1 error {:.2f}% ({} of {} correct)\n", r.top1Error, r.correct, r.images);
  s += fmt::format("top-{} error {}{}\n", r.topK, percentOrNa(r.topKError),
                   r.topKError
                       ? fmt::format(" ({} of {} in the top {})", r.topKCorrect, r.images, r.topK)
                       : fmt::format(" (fewer than {} classes)", r.topK));
  if (r.recorded.lastTop1 || r.recorded.bestTop1) {
    s += fmt::format("recorded by the trainer: last top-1 error {}, best {}\n",
                     percentOrNa(r.recorded.lastTop1), percentOrNa(r.recorded.bestTop1));
  }
  std::size_t nameWidth = 5;
  for (const auto& c : r.perClass) nameWidth = std::max(nameWidth, c.name.size());
  s += fmt::format("\n{:>5}  {:<{}}  {:>8}  {:>8}  {:>8}\n", "class", "name", nameWidth, "images",
                   "errors", "error");
  for (std::size_t k = 0; k < r.perClass.size(); ++k) {
    const ClassError& c = r.perClass[k];
    s += fmt::format("{:>5}  {:<{}}  {:>8}  {:>8}  {:>8}\n", k, c.name, nameWidth, c.images,
                     c.errors, percentOrNa(c.errorPercent));
  }
  return s;
}

}  // namespace metasemi::post
