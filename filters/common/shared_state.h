#pragma once

#include "filters/auth/hmac.h"
#include "filters/common/governance.h"
#include "filters/common/registry.h"

namespace tether::filters {

/// The filters' state that crosses workers and outlives a snapshot, in one place. The
/// server owns the process's one instance (inside its FilterChains, declared first, so it
/// outlives the workers and every snapshot), and filter factories get their state from it
/// when a snapshot is built, never from a singleton. Whatever is in it is immutable once
/// made, atomic, or behind its own lock; each type says which inaccuracy its atomics
/// accept.
struct SharedState {
  /// HMAC secrets by file, re-read when the file changes.
  hmac::SecretStore secrets;
  // The protections' state by rule name and content: kept across every reload that does not
  // change the rule; a changed rule starts afresh.
  Registry<RateLimiter> rateLimits;
  Registry<CircuitBreaker> breakers;
  Registry<ConcurrencyLimiter> concurrencyLimits;
  /// Per service, by name: in-flight requests, pending requests, retries, connections.
  Registry<ServiceCounters> serviceCounters;
  /// Nonces already seen, by HmacAuth rule name: even a reload that edits the rule must
  /// not forget them, or a captured request could be replayed right after it.
  Registry<hmac::NonceCache> nonceCaches;
};

}  // namespace tether::filters
