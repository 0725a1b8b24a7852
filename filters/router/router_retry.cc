// When an attempt fails: retries and failover under the route's policy, the retry budget
// and the deadline; the failsafe reply; the route and per-try timeouts.

#include "filters/common/reply.h"
#include "filters/router/router_filter.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::Reason;

bool RouterFilter::tryRetry(AttemptFailure failure, int status) {
  const config::RouteRule& rule = route_->routeRule();
  if (failureMode_ == config::FailureMode::kFailfast || !rule.retry || !retriesAllowed_) {
    return false;
  }
  const config::RetryPolicy& policy = *rule.retry;
  if (attempt_ > static_cast<int>(policy.attempts)) return false;
  if (responseStarted_ || tunnel_ || !canReplay_ || !requestEnd_) return false;
  if (!retryOn_->matches(failure, status)) return false;
  proxy::Worker& worker = callbacks_->worker();
  auto& stats = serviceStats();
  if (!retryBudgetAllows(static_cast<uint32_t>(stats.activeRequests),
                         static_cast<uint32_t>(stats.activeRetries), policy.budgetPercent)) {
    stats.retryBudgetExhausted++;
    return false;
  }
  // Envoy's max_retries: retries in flight to the service, all workers together.
  if (serviceCounters_ && retriesInFlight_ == 0) {
    if (serviceCounters_->retries.fetch_add(1, std::memory_order_relaxed) >=
        backend_->service->limits.maxRetries) {
      serviceCounters_->retries.fetch_sub(1, std::memory_order_relaxed);
      stats.retryBudgetExhausted++;
      return false;
    }
    countedRetry_ = true;
  }
  std::chrono::milliseconds backoff = retryBackoff(attempt_, worker.random());
  if (route_->timeout->armed()) {
    // Never start an attempt that cannot finish within the deadline.
    auto need = backoff + policy.perTryTimeout.value_or(std::chrono::milliseconds(1));
    if (route_->timeout->remainingMs() < need.count()) return false;
  }
  perTry_.cancel();
  releaseUpstream();
  upstreamReady_ = false;
  ++attempt_;
  ++retriesInFlight_;
  stats.retries++;
  stats.activeRetries++;
  backoff_.arm(worker.deadlines(), backoff, backoffDone_);
  return true;
}

void RouterFilter::startRetry() {
  // A different endpoint when there is one: the one that just failed likely still would.
  const config::EndpointConfig* next = endpoint_;
  for (int i = 0; i < 4; ++i) {
    next = pickEndpoint(*request_, callbacks_->worker());
    if (std::find(tried_.begin(), tried_.end(), next) == tried_.end()) break;
  }
  endpoint_ = next;
  callbacks_->info().upstreamAddress = endpoint_->addressText;
  if (!admitEndpoint()) return;
  requestEndSent_ = false;
  startUpstream();
}

void RouterFilter::onPerTryTimeout() {
  if (responseStarted_) return;
  serviceStats().upstreamTimeouts++;
  recordOutcome(true);
  if (tryRetry(AttemptFailure::kTimeout, 0)) return;
  fail(Reason::kUpstreamTimeout);
}

bool RouterFilter::replyFailsafe() {
  const config::RouteRule& rule = route_->routeRule();
  if (failureMode_ != config::FailureMode::kFailsafe || !rule.failsafe || responseStarted_) {
    return false;
  }
  proxy::HeaderMap extra;
  for (const auto& [name, value] : rule.failsafe->headers) {
    std::string lower = name;
    proxy::toLowerInPlace(lower);
    extra.add(std::move(lower), value);
  }
  callbacks_->sendLocalReply(rule.failsafe->status, rule.failsafe->body, Reason::kFailsafe, &extra);
  return true;
}

void RouterFilter::onUpstreamFailure(Reason reason, bool reused) {
  upstream_ = nullptr;
  queuedAt_ = nullptr;
  upstreamReady_ = false;
  if (countedPending_) {
    countedPending_ = false;
    serviceCounters_->pending.fetch_sub(1, std::memory_order_relaxed);
  }
  auto& stats = serviceStats();
  // The keep-alive race: a pooled connection the upstream had already closed. Retrying
  // once on a fresh connection is safe when the whole request is still in hand and
  // the method is idempotent. Only bodyless requests qualify: a streamed body is gone.
  if (reused && !retried_ && bodyless_ && !responseStarted_ && request_->idempotent()) {
    retried_ = true;
    requestEndSent_ = false;
    stats.retries++;
    startUpstream();
    return;
  }
  if (reason == Reason::kUpstreamConnectFailure) {
    stats.upstreamConnectFailures++;
  } else {
    stats.upstreamResets++;
  }
  recordOutcome(true);
  if (tryRetry(reason == Reason::kUpstreamConnectFailure ? AttemptFailure::kConnectFailure
                                                         : AttemptFailure::kReset,
               0)) {
    return;
  }
  fail(reason);
}

void RouterFilter::onUpstreamRefused() {
  upstream_ = nullptr;
  upstreamReady_ = false;
  // Nothing was processed, so sending it again is safe for any method, as long as the
  // whole request is still in hand (no body). A new stream lands on another connection:
  // the refusing one takes no more.
  constexpr int kMaxRefusals = 3;
  if (bodyless_ && !responseStarted_ && refusals_ < kMaxRefusals) {
    ++refusals_;
    requestEndSent_ = false;
    serviceStats().retries++;
    startUpstream();
    return;
  }
  onUpstreamFailure(Reason::kUpstreamReset, false);
}

void RouterFilter::cancelTimers() {
  route_->timeout->cancel();
  perTry_.cancel();
  backoff_.cancel();
}

void RouterFilter::fail(Reason reason) {
  cancelTimers();
  if (!responseStarted_) {
    releaseUpstream();
    if (replyFailsafe()) return;
  }
  releaseUpstream();
  if (responseStarted_) {
    callbacks_->resetStream();
    return;
  }
  replyFailure(*callbacks_, reason);
}

void RouterFilter::onDeadline() {
  serviceStats().upstreamTimeouts++;
  // When the caller's budget was the binding limit, say so: it is not this route's fault.
  fail(route_->timeout->fromCaller() ? Reason::kDeadlineExceeded : Reason::kUpstreamTimeout);
}

}  // namespace tether::filters
