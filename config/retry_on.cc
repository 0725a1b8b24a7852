#include "config/retry_on.h"

#include <algorithm>

namespace tether::config {

namespace {

/// The gRPC status a retryOn name stands for, or -1.
int grpcStatusCode(const std::string& t) {
  if (t == "cancelled") return 1;
  if (t == "deadline-exceeded") return 4;
  if (t == "resource-exhausted") return 8;
  if (t == "unavailable") return 14;
  return -1;
}

}  // namespace

bool RetryOn::failedStatus(int status) const {
  if ((fiveXx && status >= 500) || (gatewayError && status >= 502 && status <= 504)) {
    return true;
  }
  return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
}

bool RetryOn::failedGrpcStatus(int grpcStatus) const {
  return std::find(grpcStatuses.begin(), grpcStatuses.end(), grpcStatus) != grpcStatuses.end();
}

bool RetryOn::matches(AttemptFailure failure, int status) const {
  switch (failure) {
    case AttemptFailure::kConnectFailure:
      return connectFailure || fiveXx || gatewayError;
    case AttemptFailure::kReset:
    case AttemptFailure::kTimeout:
      // Envoy's semantics: a reset or a per-try timeout is a gateway error.
      return reset || fiveXx || gatewayError;
    case AttemptFailure::kStatus:
      return failedStatus(status);
    case AttemptFailure::kGrpcStatus:
      return failedGrpcStatus(status);
  }
  return false;
}

RetryOn parseRetryOn(const std::vector<std::string>& tokens, std::string* bad) {
  RetryOn r;
  for (const auto& t : tokens) {
    if (t == "connect-failure" || t == "refused-stream") {
      r.connectFailure = true;
    } else if (t == "reset") {
      r.reset = true;
    } else if (t == "5xx") {
      r.fiveXx = true;
    } else if (t == "gateway-error") {
      r.gatewayError = true;
    } else if (!t.empty() && t.size() == 3 && std::all_of(t.begin(), t.end(), ::isdigit) &&
               t[0] >= '1' && t[0] <= '5') {
      r.statuses.push_back(std::stoi(t));
    } else if (int code = grpcStatusCode(t); code >= 0) {
      r.grpcStatuses.push_back(code);
    } else {
      if (bad) *bad = t;
      return r;
    }
  }
  return r;
}

const std::vector<std::string>& retryOnNames() {
  static const std::vector<std::string> kNames = {"connect-failure",
                                                  "refused-stream",
                                                  "reset",
                                                  "5xx",
                                                  "gateway-error",
                                                  "cancelled",
                                                  "deadline-exceeded",
                                                  "unavailable",
                                                  "resource-exhausted"};
  return kNames;
}

}  // namespace tether::config
