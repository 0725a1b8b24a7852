#include "filters/circuit_breaker/circuit_breaker_filter.h"

#include "filters/common/reply.h"
#include "filters/router/route.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;
using proxy::Reason;

bool breakerFailure(const filters::CircuitBreaker& breaker, const proxy::StreamInfo& info) {
  switch (info.reason) {
    case Reason::kNone:
      return breaker.isFailureStatus(info.status) ||
             (info.grpc && breaker.isFailureGrpcStatus(info.grpcStatus));
    case Reason::kUpstreamConnectFailure:
    case Reason::kUpstreamReset:
    case Reason::kUpstreamTimeout:
    case Reason::kDeadlineExceeded:
    case Reason::kNoHealthyUpstream:
      return true;
    default:
      return false;
  }
}

FilterStatus CircuitBreakerFilter::onRequestHeaders(proxy::RequestHead& head, bool) {
  proxy::Worker& worker = callbacks_->worker();
  const filters::Governance::Subject subject =
      routeOf(*callbacks_).subject(callbacks_->info(), head);
  int64_t now = 0;
  for (const auto& breaker : governance_->breakers()) {
    if (admittedCount_ == admitted_.size()) break;
    const config::CircuitBreakerConfig& rule = breaker->config();
    if (rule.perEndpoint || !filters::Governance::matches(rule.target, subject)) continue;
    if (now == 0) now = worker.clock().nowNs();
    double r = static_cast<double>(worker.random() % 1'000'000) / 1e6;
    filters::CircuitBreaker::Admission a = breaker->admit(now, r);
    if (!a.allowed) {
      replyCircuitOpen(*callbacks_, rule);
      return FilterStatus::kStopIteration;
    }
    admitted_[admittedCount_++] = Admitted{breaker.get(), a.probe};
  }
  return FilterStatus::kContinue;
}

void CircuitBreakerFilter::onStreamComplete(const proxy::StreamInfo& info) {
  if (admittedCount_ == 0) return;
  int64_t now = callbacks_->worker().clock().nowNs();
  bool cancelled = info.status == 499;
  int64_t duration =
      now -
      std::chrono::duration_cast<std::chrono::nanoseconds>(info.start.time_since_epoch()).count();
  for (size_t i = 0; i < admittedCount_; ++i) {
    const Admitted& a = admitted_[i];
    // A call the client gave up on says nothing about the upstream, except that a probe
    // did not show it healthy.
    if (cancelled && !a.probe) continue;
    a.breaker->record(breakerFailure(*a.breaker, info) || cancelled, duration, a.probe, now);
  }
  admittedCount_ = 0;
}

}  // namespace tether::filters
