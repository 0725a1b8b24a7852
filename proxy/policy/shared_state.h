#pragma once

#include "proxy/network/tls.h"
#include "proxy/policy/governance.h"
#include "proxy/policy/hmac.h"
#include "proxy/policy/registry.h"
#include "proxy/upstream/endpoint_health.h"

namespace tether::proxy {

/// Everything that crosses workers and outlives a snapshot, in one place. The server owns
/// the process's one instance (declared first, so it outlives the workers and every
/// snapshot) and hands it to the snapshot builder, so filter factories get their state from
/// here and from nowhere else; workers get the TLS registry. Whatever is in it is either
/// immutable once made, atomic, or behind its own lock; see each type for the inaccuracy
/// its atomics accept.
struct SharedState {
  /// TLS contexts by the files they are built from, rebuilt when those files change.
  TlsRegistry tls;
  /// HMAC secrets by file, re-read when the file changes.
  hmac::SecretStore secrets;
  /// Endpoint health and first-seen times, by address (health checks, outlier detection,
  /// slow start).
  HealthRegistry health;
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

}  // namespace tether::proxy
