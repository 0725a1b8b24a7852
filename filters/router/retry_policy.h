#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/rules.h"

namespace tether::filters {

/// Why an attempt failed, for `retryOn`.
/// kGrpcStatus: a gRPC call answered trailers-only with a failing grpc-status.
enum class AttemptFailure { kConnectFailure, kReset, kTimeout, kStatus, kGrpcStatus };

/// `retryOn` compiled: which failures an attempt may be retried on.
struct RetryOn {
  bool connectFailure = false;
  bool reset = false;
  bool fiveXx = false;
  bool gatewayError = false;  // 502, 503, 504
  std::vector<int> statuses;
  std::vector<int> grpcStatuses;  // cancelled 1, deadline-exceeded 4, resource-exhausted 8,
                                  // unavailable 14

  /// Whether a failure of this kind (with `status` for kStatus) is retried.
  bool matches(AttemptFailure failure, int status) const;
  /// Whether an upstream response status counts as a failed attempt at all.
  bool failedStatus(int status) const;
  bool failedGrpcStatus(int grpcStatus) const;
};

/// Parses retryOn tokens. Returns the first unknown token in `bad` (and stops) on error.
/// Known: connect-failure, refused-stream (as connect-failure on HTTP/1.1), reset, 5xx,
/// gateway-error, a status code 100-599, and the gRPC statuses cancelled,
/// deadline-exceeded, unavailable, resource-exhausted (matched when gRPC arrives).
RetryOn parseRetryOn(const std::vector<std::string>& tokens, std::string* bad = nullptr);

/// Backoff before retry number `retry` (1 = the first retry): full jitter over an
/// exponential window, 25 ms doubling up to 250 ms.
std::chrono::milliseconds retryBackoff(int retry, uint64_t random);

/// The retry budget: retries in flight may be at most `budgetPercent` of the requests in
/// flight, but 3 are always allowed so a quiet service can still retry.
bool retryBudgetAllows(uint32_t activeRequests, uint32_t activeRetries, uint32_t budgetPercent);

/// The caller's remaining budget from `x-tether-timeout-ms` (digits only; nullopt when
/// absent or malformed).
std::optional<int64_t> parseTimeoutMs(std::optional<std::string_view> header);
/// A grpc-timeout value ("200m", "5S", 1 to 8 digits and a unit H M S m u n) in whole
/// milliseconds, rounded up; nullopt when absent or malformed.
std::optional<int64_t> parseGrpcTimeoutMs(std::optional<std::string_view> header);

/// The default `onFailure`: failover when the rule retries, failfast otherwise.
config::FailureMode effectiveFailureMode(const config::RouteRule& rule);

}  // namespace tether::filters
