#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/bootstrap.h"
#include "proxy/common/reason.h"

namespace tether::proxy {

/// Upper bounds (seconds) of tether_request_duration_seconds buckets.
inline constexpr std::array<double, 14> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct DurationHistogram {
  std::array<uint64_t, kDurationBuckets.size() + 1> counts{};  // last: +Inf
  uint64_t count = 0;
  double sum = 0;

  void observe(double seconds);
  void merge(const DurationHistogram& other);
};

/// Counters for one (direction, service, route) label set.
struct RouteStats {
  std::string direction, service, route;
  struct CodeCount {
    int code;
    Reason reason;
    uint64_t count;
  };
  std::vector<CodeCount> codes;  // few distinct values: a vector beats a map
  struct GrpcCount {
    int status;
    uint64_t count;
  };
  std::vector<GrpcCount> grpc;  // gRPC calls by grpc-status
  DurationHistogram duration;

  /// `grpcStatus` < 0: not a gRPC call.
  void record(int code, Reason reason, double seconds, int grpcStatus = -1);
};

/// Per-service upstream counters.
struct ServiceStats {
  uint64_t upstreamRequests = 0;
  uint64_t upstreamConnectFailures = 0;
  uint64_t upstreamResets = 0;
  uint64_t upstreamTimeouts = 0;
  uint64_t retries = 0;
  uint64_t retryBudgetExhausted = 0;
  uint64_t outlierEjections = 0;
  uint64_t panic = 0;
  uint64_t connectionOverflow = 0;  // requests that found limits.maxConnections spent
  int64_t activeRequests = 0;       // gauges for the retry budget
  int64_t activeRetries = 0;
};

/// One worker's counters. Only the worker's thread writes them, with no locks; a scrape
/// posts a copy request to the worker and folds the copies together on the control thread.
struct WorkerStats {
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, RouteStats, StringHash, std::equal_to<>> routes;
  std::unordered_map<std::string, ServiceStats, StringHash, std::equal_to<>> services;
  using PairCounts = std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>>;
  PairCounts laneRequests;   // "direction\0lane"
  PairCounts laneFallbacks;  // "service\0lane"
  PairCounts protocols;      // "listener\0protocol": connections by detected protocol
  PairCounts acceptPauses;   // "listener\0reason": accept back-offs (descriptors, memory)
  PairCounts http2Abuse;     // "listener\0kind": HTTP/2 connections closed by a protection
  PairCounts auth;           // "rule\0result": HmacAuth verifications and signatures
  PairCounts callers;        // "rule\0caller": requests authenticated as each caller
  uint64_t http2Streams = 0;
  DurationHistogram detectDuration;  // first byte (or timeout) decision time
  uint64_t tcpConnections = 0;
  uint64_t tcpConnectFailures = 0;
  uint64_t tcpBytesReceived = 0;  // from clients, sent upstream
  uint64_t tcpBytesSent = 0;      // from upstreams, sent to clients
  int64_t downstreamConnectionsActive = 0;
  uint64_t downstreamConnectionsTotal = 0;
  uint64_t downstreamOverflow = 0;
  int64_t upstreamConnectionsActive = 0;
  uint64_t upstreamConnectionsTotal = 0;
  uint64_t upstreamConnectionsReused = 0;
  uint64_t accessLogLines = 0;
  uint64_t accessLogDropped = 0;

  /// Records a finished request. Allocates only the first time a label set is seen.
  void recordRequest(config::Direction direction, std::string_view service, std::string_view route,
                     int code, Reason reason, double seconds, int grpcStatus = -1);
  /// Records a reply made by the codec before any stream existed (400, 431, 408).
  void recordLocal(config::Direction direction, int code, Reason reason);
  ServiceStats& service(std::string_view name);
  /// Counts one event for the label pair (a, b) in `counts`.
  void countPair(PairCounts& counts, std::string_view a, std::string_view b);
  void merge(const WorkerStats& other);

 private:
  std::string keyScratch_;
};

}  // namespace tether::proxy
