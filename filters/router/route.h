#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "filters/common/governance.h"
#include "filters/router/route_table.h"
#include "proxy/common/deadline_queue.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// The route timeout, armed when the route is chosen: time a request spends in admission
/// (a Redis round trip, a leaky bucket's wait, an injected delay) counts against it, as a
/// slow upstream would. Until the router takes the request, expiry answers it here; once
/// the router has it, the router is told instead (it may have an upstream to release, a
/// failsafe reply to send).
class RouteTimeout : public proxy::DeadlineCallback {
 public:
  ~RouteTimeout() override { deadline_.cancel(); }

  void arm(proxy::StreamCallbacks& cb, config::Duration timeout, bool fromCaller, bool travels);
  void cancel() { deadline_.cancel(); }
  /// From now on, expiry goes to `handler` (the router).
  void handOver(proxy::DeadlineCallback& handler) { handler_ = &handler; }

  bool armed() const { return armed_; }
  /// The caller's budget, not the route's timeout, is the binding limit.
  bool fromCaller() const { return fromCaller_; }
  /// Whether the next hop is told what is left (x-tether-timeout-ms): only a deadline
  /// someone set travels on; the 15 s default is no one's budget.
  bool travels() const { return travels_; }
  /// Milliseconds left (negative once past).
  int64_t remainingMs() const;

  void onDeadline() override;

 private:
  proxy::Deadline deadline_;
  proxy::StreamCallbacks* cb_ = nullptr;
  proxy::DeadlineCallback* handler_ = nullptr;
  int64_t atNs_ = 0;  // on the worker's clock
  bool armed_ = false;
  bool fromCaller_ = false;
  bool travels_ = false;
};

/// What the routing filter chose for a stream; every later filter reads it through
/// routeOf(). Views into the pinned snapshot.
struct RouteChoice : proxy::Route {
  const CompiledRule* rule = nullptr;
  /// Chosen by weight; the router narrows it to the stream's lane, if it has one.
  const CompiledBackend* backend = nullptr;
  /// The endpoint when the connection decided it (passthrough, an intercepted inbound
  /// port) rather than the load balancer.
  std::shared_ptr<const config::EndpointConfig> direct;
  /// The service's counters, all workers together (nullptr for a service not in config).
  filters::ServiceCounters* counters = nullptr;
  RouteTimeout* timeout = nullptr;  // owned by the routing filter

  const config::RouteRule& routeRule() const { return *rule->rule; }
  const config::ServiceConfig& service() const { return *backend->service; }
  /// What rule targets (RateLimit, CircuitBreaker, ConcurrencyLimit) are matched against.
  filters::Governance::Subject subject(const proxy::StreamInfo& info,
                                       const proxy::RequestHead& head) const {
    return {info.direction, info.service, info.route, head.pathOnly()};
  }
};

/// The stream's route. Only for filters after the routing filter, which either chose one or
/// answered the request.
inline const RouteChoice& routeOf(const proxy::StreamCallbacks& cb) {
  return static_cast<const RouteChoice&>(*cb.route());
}

}  // namespace tether::filters
