#pragma once
// Shared by the filters' unit tests: rule documents -> a validated Config.

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "config/config.h"

namespace tether::test {

/// Loads `rules` (YAML rule documents) with `bootstrap` (default: empty); fails the test on
/// errors.
inline std::shared_ptr<const config::Config> loadRules(const std::string& rules,
                                                       const std::string& bootstrap = "") {
  auto r = config::loadFromSources(config::Source{"boot.yaml", bootstrap},
                                   {config::Source{"rules.yaml", rules}}, false);
  for (const auto& e : r.errors) FAIL(e.format());
  return r.config;
}

}  // namespace tether::test
