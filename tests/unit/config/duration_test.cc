#include "config/duration.h"

#include <catch2/catch.hpp>

using tether::config::Duration;
using tether::config::formatDuration;
using tether::config::parseDuration;

TEST_CASE("durations parse with units", "[config]") {
  CHECK(parseDuration("300ms") == Duration(300));
  CHECK(parseDuration("10s") == Duration(10'000));
  CHECK(parseDuration("1m") == Duration(60'000));
  CHECK(parseDuration("1h") == Duration(3'600'000));
  CHECK(parseDuration("1m30s") == Duration(90'000));
}

TEST_CASE("durations without a unit or with junk are refused", "[config]") {
  CHECK_FALSE(parseDuration(""));
  CHECK_FALSE(parseDuration("10"));
  CHECK_FALSE(parseDuration("ms"));
  CHECK_FALSE(parseDuration("10 s"));
  CHECK_FALSE(parseDuration("-1s"));
  CHECK_FALSE(parseDuration("5d"));
  CHECK_FALSE(parseDuration("99999999999s"));
}

TEST_CASE("durations format back to what parses", "[config]") {
  CHECK(formatDuration(Duration(1500)) == "1500ms");
  CHECK(formatDuration(Duration(2000)) == "2s");
  CHECK(formatDuration(Duration(300'000)) == "5m");
  CHECK(parseDuration(formatDuration(Duration(42))) == Duration(42));
}
