#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/retry_on.h"
#include "config/rules.h"

namespace tether::filters {

using config::AttemptFailure;
using config::parseRetryOn;
using config::RetryOn;

/// What a route without `retry` retries on: nothing.
inline const RetryOn kNoRetry{};

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
