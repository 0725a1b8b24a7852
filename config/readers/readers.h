#pragma once
// Internal to config/: the vocabulary every rule-kind reader shares (matches, targets,
// fallbacks, numbers), defined once here, and the readers of each kind. Adding a kind:
// its reader file here, its entry in kRuleKinds (loader_rules.cc), its filter.

#include <memory>
#include <optional>
#include <string>

#include "config/loader_internal.h"
#include "config/regex.h"

namespace tether::config::detail {

/// ASCII lower case.
std::string lower(std::string s);
/// "path[i]".
std::string indexed(const std::string& path, size_t i);
/// Where `n` sits in the source being read.
Origin originOf(ErrorSink& sink, const YAML::Node& n);
/// Compiles `re` (RE2, bounded); reports an error at `at` and returns nullptr if it cannot.
std::shared_ptr<const Regex> compileRegex(ErrorSink& sink, const YAML::Node& at,
                                          const std::string& path, const std::string& re);
/// `{ exact | prefix | regex: ..., present: true }`.
void readStringMatch(ErrorSink& sink, const YAML::Node& n, const std::string& path,
                     StringMatch& out);
/// A map of names (lower-cased when `lowerKeys`) to string matches.
void readMatchMap(MapReader& r, const std::string& key,
                  std::vector<std::pair<std::string, StringMatch>>& out, bool lowerKeys);
/// A request match (routes and traffic labels). `percentage` is accepted only where the
/// caller passes somewhere to put it (TrafficLabel), so a Route with one is told the key is
/// unknown.
void readRouteMatch(ErrorSink& sink, const YAML::Node& n, const std::string& path, RouteMatch& out,
                    std::optional<double>* percentage = nullptr);
/// A plain number within [min, max].
bool readNumber(MapReader& r, const std::string& key, double& out, double min, double max);
/// `target: { direction, service, route, pathPrefix }`.
void readRuleTarget(ErrorSink& sink, MapReader& spec, RuleTarget& out);
/// `key: none | caller | source_ip | header:<name>` (rate and concurrency limits).
void readLimitKey(MapReader& spec, RateLimitKey& out);
/// `fallback: { status, body, headers }`.
void readFallback(ErrorSink& sink, MapReader& spec, FallbackReply& out);

/// Appends a rule of its kind, named and placed like its document.
template <class Rule>
Rule& addRule(std::vector<Rule>& list, const DocumentInfo& info) {
  Rule& item = list.emplace_back();
  item.name = info.name;
  item.origin = info.origin;
  if constexpr (requires { item.hash; }) item.hash = info.hash;
  return item;
}

/// Each kind's reader: fills one rule from its document's `spec` (Route also records the
/// services its backends name in `rules`, for the checks across documents).
void readServiceSpec(ErrorSink& sink, MapReader& spec, ServiceConfig& out, RuleSet& rules);
void readRouteSpec(ErrorSink& sink, MapReader& spec, RouteConfig& out, RuleSet& rules);
void readTrafficLabelSpec(ErrorSink& sink, MapReader& spec, TrafficLabelConfig& out,
                          RuleSet& rules);
void readRateLimitSpec(ErrorSink& sink, MapReader& spec, RateLimitConfig& out, RuleSet& rules);
void readCircuitBreakerSpec(ErrorSink& sink, MapReader& spec, CircuitBreakerConfig& out,
                            RuleSet& rules);
void readConcurrencyLimitSpec(ErrorSink& sink, MapReader& spec, ConcurrencyLimitConfig& out,
                              RuleSet& rules);
void readHmacAuthSpec(ErrorSink& sink, MapReader& spec, HmacAuthConfig& out, RuleSet& rules);

/// The reader of one kind, as the list of kinds (loader_rules.cc) holds it.
using RuleReader = void (*)(ErrorSink& sink, MapReader& spec, const DocumentInfo& info,
                            RuleSet& rules);

/// A kind's RuleReader: a new rule in `List`, named and placed like its document, filled by
/// `Read`.
template <auto List, auto Read>
void readKind(ErrorSink& sink, MapReader& spec, const DocumentInfo& info, RuleSet& rules) {
  Read(sink, spec, addRule(rules.*List, info), rules);
}

}  // namespace tether::config::detail
