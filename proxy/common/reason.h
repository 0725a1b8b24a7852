#pragma once

#include <string_view>

namespace tether::proxy {

/// Why Tether answered a request itself (docs/design.md, "Promises"). The name is sent as
/// `x-tether-reason`, used as a metric label and written to the access log.
enum class Reason {
  kNone,  // the upstream answered
  kNoRoute,
  kNoHealthyUpstream,
  kUpstreamConnectFailure,
  kUpstreamReset,
  kUpstreamTimeout,
  kDeadlineExceeded,
  kRateLimited,
  kCircuitOpen,
  kOverflow,
  kUnauthenticated,
  kForbidden,
  kBadRequest,
  kHeadersTooLarge,
  kBodyTooLarge,
  kDraining,
  kFailsafe,
  kFaultInjected,
  kRequestTimeout,
};

/// The wire name ("no_route", ...); "" for kNone.
std::string_view reasonName(Reason r);

/// The status Tether answers with for `r` unless a rule says otherwise.
int defaultStatus(Reason r);

/// The gRPC status code for a local reply with `reason` and HTTP `status` (gRPC's HTTP
/// mapping, e.g. UNAVAILABLE for no healthy upstream, RESOURCE_EXHAUSTED for a rate limit).
int grpcStatusFor(Reason reason, int status);

/// The standard reason phrase for an HTTP status code ("OK", "Not Found", ...).
std::string_view statusText(int status);

}  // namespace tether::proxy
