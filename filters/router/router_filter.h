#pragma once

#include <array>
#include <memory>
#include <string>

#include "filters/auth/hmac_filter.h"
#include "filters/router/retry_policy.h"
#include "filters/router/route_table.h"
#include "proxy/common/deadline_queue.h"
#include "proxy/policy/governance.h"
#include "proxy/policy/redis_client.h"
#include "proxy/stream/filter.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/stats.h"

namespace tether::filters {

/// The terminal filter: picks the route, backend and endpoint, forwards the request over a
/// pooled upstream connection and streams the response back, with flow control both ways.
class RouterFilter : public proxy::Filter,
                     public proxy::UpstreamClient,
                     public proxy::DeadlineCallback {
 public:
  RouterFilter(std::shared_ptr<const RouteTable> table,
               std::shared_ptr<const proxy::Governance> governance,
               std::shared_ptr<const AuthRules> auth = nullptr);
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

  // DeadlineCallback: the route timeout.
  void onDeadline() override;

 private:
  const config::EndpointConfig* pickEndpoint(const proxy::RequestHead& head, proxy::Worker& worker);
  /// Service limits, rate limits and circuit breakers, in that order. Returns false when the
  /// request was answered (overflow, rate_limited, circuit_open) or is being paced (a
  /// leaky bucket: afterAdmission() follows on a timer).
  bool admit(const proxy::RequestHead& head);
  /// Global rate limits (one Redis round trip each, asynchronous), then the breakers.
  /// Returns true when the request may go on now.
  bool admitGlobal();
  /// What the protections' targets are matched against.
  proxy::Governance::Subject governanceSubject() const;
  void onGlobalAnswer(const redisReply* reply);
  void onRedisTimeout();
  /// One global limit's answer (from Redis or the local fallback): false when it refused
  /// (the reply is sent); a leaky bucket's wait is kept for admitBreakers.
  bool applyGlobal(const proxy::RateDecision& d);
  /// Circuit breakers, then the leaky-bucket wait. True when the request may go on now.
  bool admitBreakers();
  /// Fault injection, then the upstream.
  void afterAdmission();
  /// The request's key for a limit rule (empty for key: none). `scratch` holds the value
  /// when it has to be built.
  std::string_view limitKey(const config::RateLimitKey& key, const proxy::RequestHead& head,
                            std::string& scratch);
  void replyRateLimited(const proxy::RateLimiter& limiter, const proxy::RateDecision& d);
  void replyCircuitOpen(const proxy::CircuitBreaker& breaker);
  /// `fallback` when it sets a status, else `status` with `body`; `extra` headers added.
  void replyProtected(const config::FallbackReply& fallback, int status, std::string_view body,
                      proxy::Reason reason, proxy::HeaderMap extra);
  void startUpstream();
  /// Carries on after a pool lent a connection (or did not).
  void onLent(proxy::Lent how);
  /// Reports the current attempt's outcome for its endpoint: passive outlier detection, and
  /// the endpoint's breaker (by `status` when the attempt got one, else by `failure`).
  void recordOutcome(bool failure, int status = 0);
  /// A perEndpoint breaker admits each attempt for the endpoint it goes to; an endpoint it
  /// refuses is swapped for another. False when none is admitted (the reply is sent).
  bool admitEndpoint();
  /// Fault injection: after the (optional) delay, maybe abort, else go upstream.
  void afterFaultDelay();
  /// Starts another attempt after a failed one when the policy, the budget and the
  /// caller's deadline allow it; returns false when the failure must stand.
  bool tryRetry(AttemptFailure failure, int status);
  void startRetry();
  void onPerTryTimeout();
  /// The configured failsafe answer, when onFailure is failsafe (returns false otherwise).
  bool replyFailsafe();
  int64_t remainingMs() const;
  /// This stream's service counters in the worker's stats (looked up once).
  proxy::ServiceStats& serviceStats();
  bool roll(double percent);
  void sendRequestHead();
  /// Outbound HmacAuth: hashes the body as it arrives; false when it is too large to sign
  /// (the reply is sent).
  bool hashBody(std::string_view data, bool end);
  /// Adds the signature headers for this attempt (a fresh date and nonce each time).
  void signRequest();
  void fail(proxy::Reason reason);
  void releaseUpstream();

  std::shared_ptr<const RouteTable> table_;
  std::shared_ptr<const proxy::Governance> governance_;
  std::shared_ptr<const AuthRules> auth_;
  // Outbound signing: the rule, the body's hash so far, and the hash once known.
  const HmacRule* signer_ = nullptr;
  std::unique_ptr<proxy::hmac::Sha256> bodyHash_;
  std::string payloadHash_;
  uint64_t hashedBytes_ = 0;
  bool awaitingBody_ = false;  // the upstream waits until the signed body is complete
  const CompiledRule* rule_ = nullptr;
  /// The endpoint when the connection decided it (passthrough, an intercepted inbound
  /// port) rather than the load balancer.
  std::shared_ptr<const config::EndpointConfig> direct_;
  const CompiledBackend* backend_ = nullptr;
  const config::EndpointConfig* endpoint_ = nullptr;
  proxy::RequestHead* request_ = nullptr;  // owned by the stream, stable for its life
  proxy::UpstreamRequest* upstream_ = nullptr;
  proxy::UpstreamPool* queuedAt_ = nullptr;  // in line for a connection of this pool
  proxy::Deadline timeout_;
  proxy::Deadline faultDelay_;
  struct FaultDelayDone : proxy::DeadlineCallback {
    RouterFilter* self;
    explicit FaultDelayDone(RouterFilter* s) : self(s) {}
    void onDeadline() override { self->afterFaultDelay(); }
  } faultDelayDone_{this};
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
  proxy::Deadline pacing_;  // a leaky bucket's wait
  Call pacingDone_{this, &RouterFilter::afterAdmission};
  // Breakers that admitted this request, to be told its outcome.
  struct Admitted {
    proxy::CircuitBreaker* breaker;
    bool probe;
  };
  std::array<Admitted, 4> admitted_{};  // breakers beyond 4 per request are not consulted
  size_t admittedCount_ = 0;
  // The first matching perEndpoint rule, and its breaker for the current attempt.
  proxy::CircuitBreaker* endpointRule_ = nullptr;
  std::shared_ptr<proxy::CircuitBreaker> endpointBreaker_;
  bool endpointProbe_ = false;
  int64_t endpointStartNs_ = 0;
  // Concurrency slots this request holds, released when it ends.
  std::array<std::shared_ptr<proxy::ConcurrencyLimiter::Counter>, 4> slots_;
  size_t slotCount_ = 0;
  proxy::ServiceCounters* serviceCounters_ = nullptr;  // counted in .active while set
  int64_t admitNs_ = 0;     // the clock as the local limits read it (0: not read)
  int64_t paceWaitNs_ = 0;  // a leaky bucket's slot, from now
  size_t nextGlobal_ = 0;   // next rate limit to consider globally
  proxy::RateLimiter* globalWaiting_ = nullptr;  // the global limit asked of Redis
  std::string globalKeyValue_;
  proxy::RedisClient::Call* redisCall_ = nullptr;
  proxy::Deadline redisTimeout_;
  Call redisTimeoutDone_{this, &RouterFilter::onRedisTimeout};
  bool countedPending_ = false;  // counted in .pending
  bool countedRetry_ = false;    // counted in .retries (once per request)
  Call backoffDone_{this, &RouterFilter::startRetry};
  const RetryOn* retryOn_ = &kNoRetry;               // the route's, compiled with the configuration
  proxy::EndpointHealth* endpointHealth_ = nullptr;  // of endpoint_; owned by the snapshot
  config::FailureMode failureMode_ = config::FailureMode::kFailfast;
  int attempt_ = 1;
  int refusals_ = 0;  // attempts an HTTP/2 upstream refused (REFUSED_STREAM, GOAWAY)
  std::vector<const config::EndpointConfig*> tried_;
  std::string replay_;          // the request body, kept (up to kReplayLimit) for retries
  bool canReplay_ = true;       // the whole request is still in hand
  bool retriesAllowed_ = true;  // false when an upstream hop already retried
  std::chrono::steady_clock::time_point deadlineAt_{};
  bool hasDeadline_ = false;
  bool deadlineFromCaller_ = false;  // the caller's budget, not the route timeout, is binding
  bool propagateDeadline_ = false;   // send x-tether-timeout-ms upstream
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

/// Builds router filters for one snapshot.
class RouterFilterFactory : public proxy::FilterFactory {
 public:
  RouterFilterFactory(std::shared_ptr<const RouteTable> table,
                      std::shared_ptr<const proxy::Governance> governance,
                      std::shared_ptr<const AuthRules> auth = nullptr)
      : table_(std::move(table)), governance_(std::move(governance)), auth_(std::move(auth)) {}
  std::unique_ptr<proxy::Filter> create() const override {
    return std::make_unique<RouterFilter>(table_, governance_, auth_);
  }

 private:
  std::shared_ptr<const RouteTable> table_;
  std::shared_ptr<const proxy::Governance> governance_;
  std::shared_ptr<const AuthRules> auth_;
};

}  // namespace tether::filters
