#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/bootstrap.h"
#include "config/error.h"
#include "config/rules.h"

namespace tether::config {

/// A complete, validated configuration: the bootstrap plus every rule document.
/// Immutable once built; shared read-only between the control loop and the workers.
struct Config {
  Bootstrap bootstrap;
  std::map<std::string, ServiceConfig> services;
  std::vector<RouteConfig> routes;
  std::vector<TrafficLabelConfig> trafficLabels;  // in file order: the first match wins
  std::vector<RateLimitConfig> rateLimits;
  std::vector<CircuitBreakerConfig> circuitBreakers;
  std::vector<ConcurrencyLimitConfig> concurrencyLimits;
  std::vector<HmacAuthConfig> hmacAuths;
  std::vector<DocumentInfo> documents;
  std::string hash;  // sha256 over all documents and the bootstrap, hex

  const ServiceConfig* findService(const std::string& name) const;
};

/// The name of the implicit service that inbound listeners deliver to (bootstrap localApp).
inline constexpr const char* kLocalAppService = "local_app";

/// Text source for loading: a name used in error messages plus its content.
struct Source {
  std::string name;
  std::string content;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  ConfigErrors errors;
  bool unreadable = false;  // a file could not be read (errors say why), not a bad content
};

/// Loads a bootstrap file and the rule sources it names (globs under rules.files are
/// expanded here), plus `extraRuleFiles`. Collects every error, not just the first.
/// `extraSources` (control-plane documents) are loaded after the files.
LoadResult loadFromFiles(const std::string& bootstrapPath,
                         const std::vector<std::string>& extraRuleFiles,
                         const std::vector<Source>& extraSources = {});

/// Loads the embedded default bootstrap (docs/design.md, "Command line").
LoadResult loadEmbeddedDefault();

/// Loads from in-memory sources: the bootstrap text and rule texts. Rule globs named in the
/// bootstrap are expanded and read when `expandRuleFiles` is true.
LoadResult loadFromSources(const Source& bootstrap, const std::vector<Source>& rules,
                           bool expandRuleFiles);

/// The embedded default bootstrap YAML.
const char* embeddedDefaultYaml();

/// The files matching a glob pattern, sorted (none when nothing matches).
std::vector<std::string> expandGlob(const std::string& pattern);

/// The whole content of the file at `path` ("-": standard input) into `out`; false (and
/// `out` untouched, `error` set to why) when it cannot be read or is larger than
/// kMaxConfigBytes. Every whole-file read in Tether goes through this.
bool readFile(const std::string& path, std::string& out, std::string* error = nullptr);

/// Hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);

}  // namespace tether::config
