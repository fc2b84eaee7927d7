// post::EvalCounts and the evaluation report: rates from counts, ranks' counts summed, the
// trainer's recorded errors, the JSON form.
#include <nlohmann/json.hpp>

#include "metasemi/core/Error.h"
#include "metasemi/post/Eval.h"
#include "support/TestSupport.h"

using namespace metasemi;
using nlohmann::json;

namespace {

// (true, predicted, in top k) of six images of three classes.
post::EvalCounts sixImages() {
  post::EvalCounts c(3, 2);
  c.add(0, 0, true);
  c.add(0, 1, true);
  c.add(1, 1, true);
  c.add(1, 2, false);
  c.add(1, 1, true);
  c.add(2, 0, false);
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(rates_follow_from_the_confusion_matrix) {
  const post::EvalCounts c = sixImages();
  BOOST_TEST(c.images() == 6);
  BOOST_TEST(c.correct() == 3);
  BOOST_TEST(c.topKCorrect() == 4);
  BOOST_TEST(c.confusion(1, 2) == 1);
  const post::EvalReport r = post::makeEvalReport(c, {"a", "b", "c"});
  BOOST_TEST(r.top1Error == 50.0);
  BOOST_TEST_REQUIRE(r.topKError.has_value());
  BOOST_TEST(*r.topKError == 100.0 - 100.0 * 4.0 / 6.0);
  BOOST_TEST_REQUIRE(r.perClass.size() == 3u);
  BOOST_TEST(r.perClass[1].name == "b");
  BOOST_TEST(r.perClass[1].images == 3);
  BOOST_TEST(r.perClass[1].errors == 1);
  BOOST_TEST(*r.perClass[1].errorPercent == 100.0 / 3.0);
  BOOST_TEST(*r.perClass[2].errorPercent == 100.0);
  BOOST_TEST(r.confusion == (std::vector<std::int64_t>{1, 1, 0, 0, 2, 1, 1, 0, 0}));
}

BOOST_AUTO_TEST_CASE(summed_counts_equal_the_counts_of_all_images) {
  // Images split between two "ranks" and summed as the communicator does.
  post::EvalCounts a(3, 2), b(3, 2);
  a.add(0, 0, true);
  a.add(0, 1, true);
  a.add(1, 1, true);
  b.add(1, 2, false);
  b.add(1, 1, true);
  b.add(2, 0, false);
  for (std::size_t i = 0; i < a.raw().size(); ++i) a.raw()[i] += b.raw()[i];
  auto whole = sixImages();
  BOOST_TEST(a.raw() == whole.raw());
}

BOOST_AUTO_TEST_CASE(top_k_needs_k_classes_and_empty_classes_have_no_rate) {
  post::EvalCounts c(3, 5);
  c.add(0, 0, true);
  const post::EvalReport r = post::makeEvalReport(c, {});
  BOOST_TEST(!r.topKError.has_value());
  BOOST_TEST(!r.perClass[1].errorPercent.has_value());
  BOOST_TEST(r.perClass[0].name.empty());
  const std::string text = post::formatEvalReport(r);
  BOOST_TEST(text.find("top-5 error n/a") != std::string::npos, text);
  const json j = json::parse(post::toJson(r));
  BOOST_TEST(j["top_k_error"].is_null());
  BOOST_TEST(j["per_class"][1]["error"].is_null());
}

BOOST_AUTO_TEST_CASE(json_holds_the_report) {
  post::EvalReport r = post::makeEvalReport(sixImages(), {"a", "b", "c"});
  r.checkpoint = "run/checkpoint.h5";
  r.step = 400;
  r.recorded = post::parseRecordedErrors(
      R"({"world_size":2,"best_top1_error":12.5,"last_top1_error":13.25,"last_top5_error":null})");
  const json j = json::parse(post::toJson(r));
  BOOST_TEST(j["checkpoint"] == "run/checkpoint.h5");
  BOOST_TEST(j["step"] == 400);
  BOOST_TEST(j["images"] == 6);
  BOOST_TEST(j["top1_error"].get<double>() == 50.0);
  BOOST_TEST(j["top_k"] == 2);
  BOOST_TEST(j["confusion"][1] == json::array({0, 2, 1}));
  BOOST_TEST(j["per_class"][1]["errors"] == 1);
  BOOST_TEST(j["recorded"]["best_top1_error"].get<double>() == 12.5);
  BOOST_TEST(j["recorded"]["last_top1_error"].get<double>() == 13.25);
  BOOST_TEST(j["recorded"]["last_top5_error"].is_null());
  BOOST_TEST(j["recorded"]["best_top5_error"].is_null());
}

BOOST_AUTO_TEST_CASE(bad_values_are_errors) {
  BOOST_CHECK_THROW(post::EvalCounts(0, 5), core::ConfigError);
  BOOST_CHECK_THROW(post::EvalCounts(3, 0), core::ConfigError);
  post::EvalCounts c(3, 1);
  BOOST_CHECK_THROW(c.add(3, 0, false), core::IoError);
  BOOST_CHECK_THROW(c.add(0, -1, false), core::IoError);
  BOOST_CHECK_THROW(post::makeEvalReport(c, {}), core::IoError);
  const post::RecordedErrors none = post::parseRecordedErrors("not json");
  BOOST_TEST(!none.lastTop1.has_value());
  BOOST_TEST(!post::parseRecordedErrors("").bestTop1.has_value());
}
