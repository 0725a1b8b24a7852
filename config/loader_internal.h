#pragma once
// Internal to config/: shared between the bootstrap and rule-document readers.

#include <yaml-cpp/yaml.h>

#include <vector>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace tether::config::detail {

/// Rule documents read so far, before cross-document validation.
struct RuleSet {
  std::vector<ServiceConfig> services;
  std::vector<RouteConfig> routes;
  std::vector<TrafficLabelConfig> trafficLabels;
  std::vector<RateLimitConfig> rateLimits;
  std::vector<CircuitBreakerConfig> circuitBreakers;
  std::vector<ConcurrencyLimitConfig> concurrencyLimits;
  std::vector<DocumentInfo> documents;
  // Where each route backend names a service, for dangling-reference errors.
  struct ServiceRef {
    std::string service;
    Origin at;
    std::string path;
    std::string file;
  };
  std::vector<ServiceRef> serviceRefs;
};

void readBootstrap(ErrorSink& sink, const YAML::Node& root, Bootstrap& b,
                   std::vector<YAML::Node>& inlineRules);

/// Reads one rule document (apiVersion/kind/metadata/spec) into `rules`.
void readRuleDocument(ErrorSink& sink, const YAML::Node& doc, RuleSet& rules);

/// Reads a multi-document YAML source.
void readRuleSource(const Source& src, RuleSet& rules, ConfigErrors& errors);

/// Cross-document checks (duplicates, dangling references) and moves the rules into `cfg`.
void finishConfig(Config& cfg, RuleSet& rules, ConfigErrors& errors);

}  // namespace tether::config::detail
