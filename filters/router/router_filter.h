#pragma once

#include <array>
#include <memory>
#include <string>

#include "filters/common/governance.h"
#include "filters/router/retry_policy.h"
#include "filters/router/route.h"
#include "proxy/common/deadline_queue.h"
#include "proxy/stream/filter.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/stats.h"

namespace tether::filters {

/// The terminal filter: narrows the route's backend to the stream's lane, picks the
/// endpoint (load balancer, per-endpoint breakers, outlier detection), forwards the request
/// over a pooled upstream connection and streams the response back, with flow control both
/// ways; retries, failover and failsafe replies under the route's policy and deadline.
class RouterFilter : public proxy::Filter,
                     public proxy::UpstreamClient,
                     public proxy::DeadlineCallback {
 public:
  RouterFilter(std::shared_ptr<const RouteTable> table,
               std::shared_ptr<const filters::Governance> governance);
  ~RouterFilter() override;

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  proxy::FilterStatus onRequestData(std::string& data, bool endStream) override;
  proxy::FilterStatus onRequestTrailers(proxy::HeaderMap& trailers) override;
  void onResponseWatermark(bool aboveHigh) override;
  void onStreamComplete(const proxy::StreamInfo& info) override;
  void onDestroy() override;

  // UpstreamClient
  void onUpstreamReady() override;
  void onUpstreamFailure(proxy::Reason reason, bool reused) override;
  void onUpstreamRefused() override;
  void onUpstreamHeaders(proxy::ResponseHead& head, bool endStream) override;
  void onUpstreamData(std::string& data, bool endStream) override;
  void onUpstreamTrailers(proxy::HeaderMap& trailers) override;
  void onUpstreamReset() override;
  void onUpstreamWatermark(bool aboveHigh) override;
  void onUpstreamGranted(proxy::UpstreamRequest& request, proxy::Lent how) override;

  // DeadlineCallback: the route timeout, handed over by the routing filter.
  void onDeadline() override;

 private:
  // router_endpoint.cc: choosing and judging endpoints.
  /// The lane's backend when the stream has a lane and the backend has endpoints on it;
  /// false when the lane's fallback is none and it has not (the reply is sent).
  bool chooseLane();
  const config::EndpointConfig* pickEndpoint(const proxy::RequestHead& head, proxy::Worker& worker);
  /// A perEndpoint breaker admits each attempt for the endpoint it goes to; an endpoint it
  /// refuses is swapped for another. False when none is admitted (the reply is sent).
  bool admitEndpoint();
  /// Reports the current attempt's outcome for its endpoint: passive outlier detection, and
  /// the endpoint's breaker (by `status` when the attempt got one, else by `failure`).
  void recordOutcome(bool failure, int status = 0);

  // router_filter.cc: the exchange.
  /// The route's header rules, X-Forwarded-For and Via.
  void rewriteHead(proxy::RequestHead& head);
  void startUpstream();
  /// Carries on after a pool lent a connection (or did not).
  void onLent(proxy::Lent how);
  void sendRequestHead();
  void releaseUpstream();
  /// This stream's service counters in the worker's stats (looked up once).
  proxy::ServiceStats& serviceStats();

  // router_retry.cc: when an attempt fails.
  /// Starts another attempt after a failed one when the policy, the budget and the
  /// caller's deadline allow it; returns false when the failure must stand.
  bool tryRetry(AttemptFailure failure, int status);
  void startRetry();
  void onPerTryTimeout();
  /// The configured failsafe answer, when onFailure is failsafe (returns false otherwise).
  bool replyFailsafe();
  /// Ends the stream for `reason`: the failsafe reply, a local reply, or a reset once the
  /// response has started.
  void fail(proxy::Reason reason);
  void cancelTimers();

  std::shared_ptr<const RouteTable> table_;
  std::shared_ptr<const filters::Governance> governance_;
  const RouteChoice* route_ = nullptr;
  const CompiledBackend* backend_ = nullptr;
  const config::EndpointConfig* endpoint_ = nullptr;
  proxy::RequestHead* request_ = nullptr;  // owned by the stream, stable for its life
  proxy::UpstreamRequest* upstream_ = nullptr;
  proxy::UpstreamPool* queuedAt_ = nullptr;  // in line for a connection of this pool
  // Retries: each attempt's timeout, and the backoff before the next attempt.
  proxy::Deadline perTry_;
  proxy::Deadline backoff_;
  struct Call : proxy::DeadlineCallback {
    RouterFilter* self;
    void (RouterFilter::*fn)();
    Call(RouterFilter* s, void (RouterFilter::*f)()) : self(s), fn(f) {}
    void onDeadline() override { (self->*fn)(); }
  };
  Call perTryDone_{this, &RouterFilter::onPerTryTimeout};
  Call backoffDone_{this, &RouterFilter::startRetry};
  // The first matching perEndpoint rule, and its breaker for the current attempt.
  filters::CircuitBreaker* endpointRule_ = nullptr;
  std::shared_ptr<filters::CircuitBreaker> endpointBreaker_;
  bool endpointProbe_ = false;
  int64_t endpointStartNs_ = 0;
  filters::ServiceCounters* serviceCounters_ = nullptr;
  bool countedPending_ = false;                      // counted in .pending
  bool countedRetry_ = false;                        // counted in .retries (once per request)
  const RetryOn* retryOn_ = &kNoRetry;               // the route's, compiled with the configuration
  proxy::EndpointHealth* endpointHealth_ = nullptr;  // of endpoint_; owned by the snapshot
  config::FailureMode failureMode_ = config::FailureMode::kFailfast;
  int attempt_ = 1;
  int refusals_ = 0;  // attempts an HTTP/2 upstream refused (REFUSED_STREAM, GOAWAY)
  std::vector<const config::EndpointConfig*> tried_;
  std::string replay_;          // the request body, kept (up to kReplayLimit) for retries
  bool canReplay_ = true;       // the whole request is still in hand
  bool retriesAllowed_ = true;  // false when an upstream hop already retried
  int retriesInFlight_ = 0;
  bool countedActive_ = false;
  proxy::ServiceStats* serviceStats_ = nullptr;
  std::string pending_;  // body bytes that arrived before the upstream was ready
  bool requestEnd_ = false;
  bool bodyless_ = false;
  bool requestEndSent_ = false;
  bool pendingTrailers_ = false;
  proxy::HeaderMap trailers_;
  bool upstreamReady_ = false;
  bool responseStarted_ = false;
  bool responseDone_ = false;
  bool tunnel_ = false;
  bool retried_ = false;
  bool pausedDownstream_ = false;
  bool pausedUpstream_ = false;
};

using RouterFilterFactory = proxy::FactoryOf<RouterFilter, std::shared_ptr<const RouteTable>,
                                             std::shared_ptr<const filters::Governance>>;

}  // namespace tether::filters
