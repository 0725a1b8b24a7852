#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/duration.h"

namespace tether::config {

enum class Direction { kInbound, kOutbound };
const char* toString(Direction d);

using Labels = std::map<std::string, std::string>;

struct Node {
  std::string name;     // default: hostname
  std::string service;  // the local app's service name
  Labels labels;
};

struct ListenerConfig {
  std::string name;
  Address address;
  Direction direction = Direction::kOutbound;
  bool originalDestination = false;
  uint32_t maxConnections = 100'000;  // per listener, all workers together
};

/// Downstream HTTP/1.1 limits, with the safe defaults documented in docs/configuration.md.
struct HttpLimits {
  uint32_t maxRequestHeadersBytes = 60 * 1024;                // over it: 431
  uint32_t maxRequestHeaders = 100;                           // over it: 431
  uint64_t maxRequestBodyBytes = 0;                           // 0: unlimited; over it: 413
  Duration requestHeadersTimeout = std::chrono::seconds(10);  // slowloris guard: 408
  Duration idleTimeout = std::chrono::seconds(300);  // keep-alive connection with no stream
  uint32_t bufferHighWatermark = 1024 * 1024;        // pause the sender above this
  uint32_t bufferLowWatermark = 256 * 1024;          // resume it below this
  bool addXForwardedFor = true;                      // append the peer to x-forwarded-for
  bool addVia = true;                                // add "Via: 1.1 tether"
};

/// Per-endpoint upstream connection pool defaults (per worker).
struct UpstreamDefaults {
  Duration connectTimeout = std::chrono::seconds(1);
  uint32_t maxIdlePerEndpoint = 64;
  Duration idleTimeout = std::chrono::seconds(60);
};

struct LocalApp {
  Address address{"127.0.0.1", 8080};
  std::optional<std::string> readinessPath;  // /ready waits for it when set
};

struct RulesSource {
  std::vector<std::string> files;  // globs
  std::optional<Address> controlPlane;
};

struct AccessLog {
  std::string path;  // "" = off; "-" = stdout
};

struct Bootstrap {
  Node node;
  Address admin{"127.0.0.1", 15000};
  uint32_t workers = 0;  // 0 = auto (one per core)
  std::vector<ListenerConfig> listeners;
  LocalApp localApp;
  RulesSource rules;
  Duration drainTimeout = std::chrono::seconds(20);
  Duration drainGrace = std::chrono::seconds(1);  // keep accepting after /ready turns 503
  HttpLimits http;
  UpstreamDefaults upstream;
  AccessLog accessLog;
};

}  // namespace tether::config
