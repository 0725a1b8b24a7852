#pragma once
// Internal to config/: shared between the bootstrap and rule-document readers.

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
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
  std::vector<HmacAuthConfig> hmacAuths;
  std::vector<DocumentInfo> documents;
  // Where each route backend names a service, for dangling-reference errors.
  struct ServiceRef {
    std::string service;
    Origin at;
    std::string path;
    std::string file;
  };
  std::vector<ServiceRef> serviceRefs;
  /// OpenSergo fault-tolerance documents, resolved into the native rules by finishConfig.
  struct OpenSergo {
    std::map<std::string, RateLimitConfig> rateLimits;  // RateLimit/ThrottlingStrategy
    std::map<std::string, CircuitBreakerConfig> breakers;
    std::map<std::string, ConcurrencyLimitConfig> concurrency;
    std::map<std::string, FallbackReply> fallbacks;
    std::map<std::string, std::string> hashes;  // of each strategy and fallback document
    struct Rule {
      std::string name;
      Origin origin;
      std::string hash;
      std::string app;                 // selector.app: the service the rule protects
      std::vector<std::string> paths;  // targets[].targetResourceName
      std::vector<std::string> strategies;
      std::string fallback;
    };
    std::vector<Rule> rules;
  } openSergo;
};

/// The apiVersion of OpenSergo's fault-tolerance documents.
inline constexpr const char* kOpenSergoApiVersion = "fault-tolerance.opensergo.io/v1alpha1";

/// Reads an OpenSergo fault-tolerance document (kind RateLimitStrategy, ThrottlingStrategy,
/// ConcurrencyLimitStrategy, CircuitBreakerStrategy, HttpRequestFallbackAction,
/// FaultToleranceRule); false when `kind` is not one of them.
bool readOpenSergoDocument(ErrorSink& sink, const std::string& kind, const DocumentInfo& info,
                           MapReader& spec, RuleSet& rules);
/// Turns FaultToleranceRules into RateLimit, CircuitBreaker and ConcurrencyLimit rules.
void resolveOpenSergo(const Bootstrap& bootstrap, RuleSet& rules, ConfigErrors& errors);

/// "10%" or 10: a number from 0 to 100 (absent: `out` unchanged).
bool readPercentage(MapReader& r, std::optional<double>& out,
                    const std::string& key = "percentage");

void readBootstrap(ErrorSink& sink, const YAML::Node& root, Bootstrap& b,
                   std::vector<YAML::Node>& inlineRules);

/// Reads one rule document (apiVersion/kind/metadata/spec) into `rules`.
void readRuleDocument(ErrorSink& sink, const YAML::Node& doc, RuleSet& rules);

/// Reads a multi-document YAML source.
void readRuleSource(const Source& src, RuleSet& rules, ConfigErrors& errors);

/// Cross-document checks (duplicates, dangling references) and moves the rules into `cfg`.
void finishConfig(Config& cfg, RuleSet& rules, ConfigErrors& errors);

}  // namespace tether::config::detail
