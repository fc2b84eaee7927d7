// Error kinds map to the documented exit codes; check macros carry their context.
#include "metasemi/core/Error.h"
#include "support/TestSupport.h"

namespace core = metasemi::core;

BOOST_AUTO_TEST_CASE(exit_codes_per_kind) {
  BOOST_TEST(core::exitCodeFor(core::ConfigError("x")) == 2);
  BOOST_TEST(core::exitCodeFor(core::IoError("x")) == 3);
  BOOST_TEST(core::exitCodeFor(core::CommError("x")) == 4);
  BOOST_TEST(core::exitCodeFor(core::NumericalError("x")) == 5);
  BOOST_TEST(core::exitCodeFor(core::Error("x")) == 1);
  BOOST_TEST(core::exitCodeFor(std::runtime_error("x")) == 1);
}

BOOST_AUTO_TEST_CASE(check_macro_names_expression_and_place) {
  try {
    const int n = 3;
    MS_CHECK(n == 4, "n is {}", n);
    BOOST_FAIL("no throw");
  } catch (const core::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("n is 3") == 0u);
    BOOST_TEST(msg.find("`n == 4`") != std::string::npos);
    BOOST_TEST(msg.find("test_errors.cpp") != std::string::npos);
  }
  BOOST_CHECK_THROW(MS_REQUIRE(false, core::IoError, "file {}", "a"), core::IoError);
}
