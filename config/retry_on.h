#pragma once

#include <string>
#include <vector>

namespace tether::config {

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

/// Compiles retryOn tokens, once per configuration (the route reader): requests only read
/// the result. Returns the first unknown token in `bad` (and stops) on error.
/// Known: connect-failure, refused-stream (as connect-failure on HTTP/1.1), reset, 5xx,
/// gateway-error, a status code 100-599, and the gRPC statuses cancelled,
/// deadline-exceeded, unavailable, resource-exhausted (matched when gRPC arrives).
RetryOn parseRetryOn(const std::vector<std::string>& tokens, std::string* bad = nullptr);

/// Every retryOn name (status codes aside), for "did you mean" hints.
const std::vector<std::string>& retryOnNames();

}  // namespace tether::config
