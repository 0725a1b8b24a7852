#include "filters/router/router_filter.h"

#include <algorithm>
#include <charconv>

#include "proxy/stream/snapshot.h"
#include "proxy/upstream/http1_client.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;
using proxy::Reason;

namespace {

// Envoy's default route timeout: a hung upstream must not hold a stream forever.
constexpr config::Duration kDefaultRouteTimeout = std::chrono::seconds(15);

// A request body larger than this is streamed without a copy, and so cannot be retried.
constexpr size_t kReplayLimit = 64 * 1024;

std::string peerIp(const std::string& peer) {
  size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

}  // namespace

RouterFilter::RouterFilter(std::shared_ptr<const RouteTable> table,
                           std::shared_ptr<const proxy::Governance> governance,
                           std::shared_ptr<const AuthRules> auth)
    : table_(std::move(table)), governance_(std::move(governance)), auth_(std::move(auth)) {}

RouterFilter::~RouterFilter() { releaseUpstream(); }

FilterStatus RouterFilter::onRequestHeaders(proxy::RequestHead& head, bool endStream) {
  auto& info = callbacks_->info();
  request_ = &head;
  requestEnd_ = endStream;
  bodyless_ = endStream;
  const proxy::HeaderString* budgetHeader = head.headers.get(proxy::kTimeoutHeader);
  std::optional<int64_t> budget = parseTimeoutMs(proxy::view(budgetHeader));
  // A gRPC caller's deadline is a budget too; the tighter of the two binds.
  if (auto grpc = parseGrpcTimeoutMs(proxy::view(head.headers.get("grpc-timeout")))) {
    budget = budget ? std::min(*budget, *grpc) : *grpc;
  }
  // Tether writes its own value when it forwards (sendRequestHead); the caller's goes.
  if (budgetHeader) head.headers.remove(proxy::kTimeoutHeader);
  if (budget && *budget <= 0) {
    // The caller has already given up: do not spend the upstream's time on it.
    callbacks_->sendLocalReply(504, "deadline exceeded\n", Reason::kDeadlineExceeded);
    return FilterStatus::kStopIteration;
  }
  proxy::Worker& worker = callbacks_->worker();
  const config::EndpointConfig* original = info.originalDestination.get();
  if (info.direction == config::Direction::kInbound) {
    rule_ = table_->inbound();
    // An intercepted inbound connection goes to the app port the client asked for.
    const config::Address& app = worker.bootstrap().localApp.address;
    if (original && original->address.port != app.port) {
      auto e = std::make_shared<config::EndpointConfig>();
      e->address = config::Address{app.host, original->address.port};
      e->addressText = e->address.toString();
      direct_ = std::move(e);
    }
  } else {
    rule_ = table_->matchOutbound(head, original);
    if (!rule_ && original) {
      if (info.denyUnknownDestinations) {
        callbacks_->sendLocalReply(502, "no route to " + original->addressText + "\n",
                                   Reason::kNoRoute);
        return FilterStatus::kStopIteration;
      }
      // Not a known service: on to wherever the app was connecting, like a plain socket.
      rule_ = table_->passthrough();
      direct_ = info.originalDestination;
    }
  }
  if (!rule_) {
    callbacks_->sendLocalReply(404, "no route\n", Reason::kNoRoute);
    return FilterStatus::kStopIteration;
  }
  info.route = rule_->route->name;  // views into the pinned snapshot
  backend_ = RouteTable::pickBackend(*rule_, worker.random());
  if (backend_) info.service = backend_->backend->service;
  if (backend_ && !info.lane.empty() && info.direction == config::Direction::kOutbound) {
    if (const CompiledBackend* onLane = backend_->lane(info.lane)) {
      backend_ = onLane;
    } else {
      const config::TrafficLabelConfig* label = table_->labelRule(info.lane);
      if (label && label->fallback == config::TrafficLabelConfig::Fallback::kNone) {
        callbacks_->sendLocalReply(503, "no endpoint on lane " + info.lane + "\n",
                                   Reason::kNoHealthyUpstream);
        return FilterStatus::kStopIteration;
      }
      // No endpoint on the lane: the baseline serves it, and the fallback is counted.
      worker.stats().countPair(worker.stats().laneFallbacks, info.service,
                               table_->knownLane(info.lane) ? info.lane : "other");
    }
  }
  endpoint_ = backend_ ? pickEndpoint(head, worker) : nullptr;
  if (!endpoint_) {
    callbacks_->sendLocalReply(503, "no healthy upstream\n", Reason::kNoHealthyUpstream);
    return FilterStatus::kStopIteration;
  }
  info.upstreamAddress = endpoint_->addressText;

  const config::RouteRule& rule = *rule_->rule;
  for (const auto& name : rule.removeRequestHeaders) head.headers.remove(name);
  for (const auto& [name, value] : rule.addRequestHeaders) {
    std::string lower = name;
    proxy::toLowerInPlace(lower);
    head.headers.set(lower, value);
  }
  if (rule.prefixRewrite && rule.match.pathPrefix) {
    head.path = *rule.prefixRewrite + head.path.substr(rule.match.pathPrefix->size());
  }
  const auto& http = worker.bootstrap().http;
  if (http.addXForwardedFor && !info.downstreamAddress.empty()) {
    std::string ip = peerIp(info.downstreamAddress);
    if (const proxy::HeaderString* xff = head.headers.get("x-forwarded-for")) {
      head.headers.set("x-forwarded-for", std::string(*xff) + ", " + ip);
    } else {
      head.headers.add("x-forwarded-for", ip);
    }
  }
  if (http.addVia) {
    if (const proxy::HeaderString* via = head.headers.get("via")) {
      head.headers.set("via", std::string(*via) + ", 1.1 tether");
    } else {
      head.headers.add("via", "1.1 tether");
    }
  }
  config::Duration timeout = rule.timeout.value_or(kDefaultRouteTimeout);
  if (budget && (timeout.count() == 0 || *budget < timeout.count())) {
    timeout = config::Duration(*budget);
    deadlineFromCaller_ = true;
  }
  if (timeout.count() > 0) {
    timeout_.arm(worker.deadlines(), timeout, *this);
    deadlineAt_ = std::chrono::steady_clock::now() + timeout;
    hasDeadline_ = true;
    // Only a deadline someone set travels on; the 15 s default is no one's budget.
    propagateDeadline_ = deadlineFromCaller_ || rule.timeout.has_value();
  }
  failureMode_ = effectiveFailureMode(rule);
  retryOn_ = rule.retry ? &rule.retry->on : &kNoRetry;
  if (auth_ && info.direction == config::Direction::kOutbound) {
    for (const auto& r : auth_->outbound) {
      if (r->signingKey && r->applies(info.service, info.route, head.pathOnly())) {
        signer_ = r.get();
        break;
      }
    }
    if (signer_) {
      // A tunnel's bytes cannot be hashed ahead: its head is signed without them.
      if (head.upgrade || head.isConnect()) {
        payloadHash_ = proxy::hmac::kUnsignedPayload;
      } else if (endStream) {
        payloadHash_ = proxy::hmac::kEmptyBodyHash;
      } else {
        bodyHash_ = std::make_unique<proxy::hmac::Sha256>();
      }
    }
  }
  if (const proxy::HeaderString* a = head.headers.get(proxy::kAttemptHeader)) {
    retriesAllowed_ = *a == "1";
  }
  head.headers.remove(proxy::kAttemptHeader);
  if (admit(head)) afterAdmission();
  return FilterStatus::kStopIteration;
}

namespace {

int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Whole seconds, rounded up, at least 1 (Retry-After, RateLimit reset).
std::string ceilSeconds(int64_t ns) {
  return std::to_string(std::max<int64_t>(1, (ns + 999'999'999) / 1'000'000'000));
}

}  // namespace

bool RouterFilter::admit(const proxy::RequestHead& head) {
  if (!governance_) return true;
  auto& info = callbacks_->info();
  const config::ServiceLimits& limits = backend_->service->limits;
  if (proxy::ServiceCounters* c = governance_->counters(info.service)) {
    // Envoy's max_requests: requests in flight to the service, all workers together.
    if (c->active.fetch_add(1, std::memory_order_relaxed) >= limits.maxRequests) {
      c->active.fetch_sub(1, std::memory_order_relaxed);
      replyProtected({}, 503, "overflow\n", Reason::kOverflow, {});
      return false;
    }
    serviceCounters_ = c;
  }
  const proxy::Governance::Subject subject = governanceSubject();
  int64_t now = 0;
  int64_t wait = 0;
  for (const auto& limiter : governance_->rateLimits()) {
    const config::RateLimitConfig& rl = limiter->config();
    if (rl.global || !proxy::Governance::matches(rl.target, subject)) continue;
    if (now == 0) now = steadyNs();
    std::string scratch;
    proxy::RateDecision d = limiter->acquire(limitKey(rl.key, head, scratch), now);
    if (!d.allowed) {
      replyRateLimited(*limiter, d);
      return false;
    }
    wait = std::max(wait, d.waitNs);
  }
  paceWaitNs_ = wait;
  for (const auto& limiter : governance_->concurrencyLimits()) {
    if (slotCount_ == slots_.size()) break;
    if (!proxy::Governance::matches(limiter->config().target, subject)) continue;
    if (now == 0) now = steadyNs();
    std::string scratch;
    auto slot = limiter->acquire(limitKey(limiter->config().key, head, scratch), now);
    if (!slot) {
      replyProtected(limiter->config().fallback, 503, "overflow\n", Reason::kOverflow, {});
      return false;
    }
    slots_[slotCount_++] = std::move(slot);
  }
  nextGlobal_ = 0;
  admitNs_ = now;  // one clock read serves the breakers too, unless Redis is waited for
  return admitGlobal();
}

proxy::Governance::Subject RouterFilter::governanceSubject() const {
  const auto& info = callbacks_->info();
  return {info.direction, info.service, info.route, request_->pathOnly()};
}

bool RouterFilter::admitGlobal() {
  const auto& limits = governance_->rateLimits();
  proxy::Worker& worker = callbacks_->worker();
  const proxy::Governance::Subject subject = governanceSubject();
  while (nextGlobal_ < limits.size()) {
    proxy::RateLimiter& limiter = *limits[nextGlobal_++];
    if (!limiter.config().global || !proxy::Governance::matches(limiter.config().target, subject)) {
      continue;
    }
    std::string scratch;
    globalKeyValue_ = limitKey(limiter.config().key, *request_, scratch);
    globalWaiting_ = &limiter;
    proxy::RedisClient* redis = worker.redis();
    redisCall_ = redis ? redis->eval(limiter.globalScript(), limiter.globalKey(globalKeyValue_),
                                     limiter.globalArgs(),
                                     [this](const redisReply* r) { onGlobalAnswer(r); })
                       : nullptr;
    if (redisCall_) {
      admitNs_ = 0;
      redisTimeout_.arm(worker.deadlines(), worker.bootstrap().redis.timeout, redisTimeoutDone_);
      return false;  // onGlobalAnswer or onRedisTimeout carries on
    }
    // Redis is away: the local fallback limit decides (counted, never silently open).
    if (!applyGlobal(limiter.acquireFallback(globalKeyValue_, steadyNs()))) return false;
  }
  return admitBreakers();
}

bool RouterFilter::applyGlobal(const proxy::RateDecision& d) {
  if (!d.allowed) {
    replyRateLimited(*globalWaiting_, d);
    return false;
  }
  paceWaitNs_ = std::max(paceWaitNs_, d.waitNs);  // a global leaky bucket's slot
  return true;
}

void RouterFilter::onGlobalAnswer(const redisReply* reply) {
  redisCall_ = nullptr;
  redisTimeout_.cancel();
  proxy::RateDecision d;
  if (!proxy::RateLimiter::parseGlobalReply(reply, d)) {
    d = globalWaiting_->acquireFallback(globalKeyValue_, steadyNs());
  }
  if (applyGlobal(d) && admitGlobal()) afterAdmission();
}

void RouterFilter::onRedisTimeout() {
  if (redisCall_) redisCall_->cancel();
  redisCall_ = nullptr;
  if (applyGlobal(globalWaiting_->acquireFallback(globalKeyValue_, steadyNs())) && admitGlobal()) {
    afterAdmission();
  }
}

bool RouterFilter::admitBreakers() {
  proxy::Worker& worker = callbacks_->worker();
  const proxy::Governance::Subject subject = governanceSubject();
  int64_t now = admitNs_;
  for (const auto& breaker : governance_->breakers()) {
    if (admittedCount_ == admitted_.size()) break;
    if (!proxy::Governance::matches(breaker->config().target, subject)) continue;
    if (breaker->config().perEndpoint) {
      if (!endpointRule_) endpointRule_ = breaker.get();  // the first such rule decides
      continue;
    }
    if (now == 0) now = steadyNs();
    double r = static_cast<double>(worker.random() % 1'000'000) / 1e6;
    proxy::CircuitBreaker::Admission a = breaker->admit(now, r);
    if (!a.allowed) {
      replyCircuitOpen(*breaker);
      return false;
    }
    admitted_[admittedCount_++] = Admitted{breaker.get(), a.probe};
  }
  if (!admitEndpoint()) return false;
  if (paceWaitNs_ > 0) {
    // A leaky bucket paces: the request waits for its slot on a timer, the worker does not.
    pacing_.arm(worker.deadlines(), std::chrono::milliseconds((paceWaitNs_ + 999'999) / 1'000'000),
                pacingDone_);
    return false;
  }
  return true;
}

bool RouterFilter::admitEndpoint() {
  if (!endpointRule_) return true;
  proxy::Worker& worker = callbacks_->worker();
  int64_t now = steadyNs();
  // Endpoints whose breaker refused: the load balancer is asked for others, a few times
  // over (round robin visits them all; random may need more draws).
  std::array<const config::EndpointConfig*, 16> refused{};
  size_t refusedCount = 0;
  const size_t draws = std::min<size_t>(16, 2 * backend_->endpoints.size());
  while (true) {
    std::shared_ptr<proxy::CircuitBreaker> b =
        endpointRule_->forEndpoint(endpoint_->addressText, now);
    double r = static_cast<double>(worker.random() % 1'000'000) / 1e6;
    proxy::CircuitBreaker::Admission a = b->admit(now, r);
    if (a.allowed) {
      endpointBreaker_ = std::move(b);
      endpointProbe_ = a.probe;
      endpointStartNs_ = now;
      callbacks_->info().upstreamAddress = endpoint_->addressText;
      return true;
    }
    if (refusedCount == refused.size()) break;
    refused[refusedCount++] = endpoint_;
    const config::EndpointConfig* next = nullptr;
    for (size_t i = 0; i < draws && !next; ++i) {
      const config::EndpointConfig* e = pickEndpoint(*request_, worker);
      if (e && std::find(refused.begin(), refused.begin() + refusedCount, e) ==
                   refused.begin() + refusedCount) {
        next = e;
      }
    }
    if (!next) break;
    endpoint_ = next;
  }
  replyCircuitOpen(*endpointRule_);
  return false;
}

std::string_view RouterFilter::limitKey(const config::RateLimitKey& key,
                                        const proxy::RequestHead& head, std::string& scratch) {
  switch (key.kind) {
    case config::RateLimitKey::Kind::kNone:
      break;
    case config::RateLimitKey::Kind::kCaller:
      // The authenticated caller when an HmacAuth rule verified one, else what the request
      // says of itself.
      if (!callbacks_->info().caller.empty()) return callbacks_->info().caller;
      if (const proxy::HeaderString* v = head.headers.get("x-tether-caller")) return *v;
      break;
    case config::RateLimitKey::Kind::kSourceIp:
      scratch = peerIp(callbacks_->info().downstreamAddress);
      return scratch;
    case config::RateLimitKey::Kind::kHeader:
      if (const proxy::HeaderString* v = head.headers.get(key.header)) return *v;
      break;
  }
  return {};
}

void RouterFilter::afterAdmission() {
  const config::RouteRule& rule = *rule_->rule;
  if (rule.fault) {
    const config::FaultConfig& f = *rule.fault;
    if (f.delay && roll(f.delayPercent)) {
      // The delay counts against the route timeout, as a slow upstream would.
      faultDelay_.arm(callbacks_->worker().deadlines(), *f.delay, faultDelayDone_);
      return;
    }
  }
  afterFaultDelay();
}

void RouterFilter::replyProtected(const config::FallbackReply& fallback, int status,
                                  std::string_view body, Reason reason, proxy::HeaderMap extra) {
  timeout_.cancel();
  for (const auto& [name, value] : fallback.headers) {
    std::string lower = name;
    proxy::toLowerInPlace(lower);
    extra.set(lower, value);
  }
  if (fallback.status != 0) {
    callbacks_->sendLocalReply(fallback.status, fallback.body, reason, &extra);
  } else {
    callbacks_->sendLocalReply(status, body, reason, &extra);
  }
}

void RouterFilter::replyRateLimited(const proxy::RateLimiter& limiter,
                                    const proxy::RateDecision& d) {
  const config::RateLimitConfig& rl = limiter.config();
  int64_t window = std::chrono::duration_cast<std::chrono::seconds>(rl.per).count();
  std::string reset = ceilSeconds(d.retryAfterNs);
  proxy::HeaderMap h;
  h.add("retry-after", reset);
  // IETF draft-ietf-httpapi-ratelimit-headers: the policy, and where the client stands.
  h.add("ratelimit-policy",
        std::to_string(rl.limit) + ";w=" + std::to_string(std::max<int64_t>(1, window)));
  h.add("ratelimit", "limit=" + std::to_string(rl.limit) + ", remaining=0, reset=" + reset);
  replyProtected(rl.fallback, 429, "rate limited\n", Reason::kRateLimited, std::move(h));
}

void RouterFilter::replyCircuitOpen(const proxy::CircuitBreaker& breaker) {
  proxy::HeaderMap h;
  h.add("retry-after", ceilSeconds(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       breaker.config().openDuration)
                                       .count()));
  replyProtected(breaker.config().fallback, 503, "circuit open\n", Reason::kCircuitOpen,
                 std::move(h));
}

namespace {

/// Whether a finished request counts as a failure for `breaker`.
bool breakerFailure(const proxy::CircuitBreaker& breaker, const proxy::StreamInfo& info) {
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

}  // namespace

void RouterFilter::onStreamComplete(const proxy::StreamInfo& info) {
  if (admittedCount_ == 0 && !endpointBreaker_) return;
  int64_t now = steadyNs();
  bool cancelled = info.status == 499;
  // An attempt whose outcome was never seen (the route timeout, the client leaving) is
  // judged by how the request ended.
  if (endpointBreaker_ && (!cancelled || endpointProbe_)) {
    endpointBreaker_->record(breakerFailure(*endpointBreaker_, info) || cancelled,
                             now - endpointStartNs_, endpointProbe_, now);
  }
  endpointBreaker_.reset();
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

bool RouterFilter::roll(double percent) {
  // In hundredths of a percent: 12.5 -> 1250 of 10,000.
  return static_cast<double>(callbacks_->worker().random() % 10000) < percent * 100;
}

void RouterFilter::afterFaultDelay() {
  if (bodyHash_) {
    // A signed request goes upstream once its body is hashed: onRequestData resumes here.
    awaitingBody_ = true;
    return;
  }
  const config::RouteRule& rule = *rule_->rule;
  if (rule.fault && rule.fault->abortStatus && roll(rule.fault->abortPercent)) {
    timeout_.cancel();
    callbacks_->sendLocalReply(*rule.fault->abortStatus, "fault injected\n",
                               Reason::kFaultInjected);
    return;
  }
  auto& stats = serviceStats();
  stats.upstreamRequests++;
  stats.activeRequests++;
  countedActive_ = true;
  startUpstream();
}

proxy::ServiceStats& RouterFilter::serviceStats() {
  // The service is set once, at routing; the worker's map never drops an entry.
  if (!serviceStats_)
    serviceStats_ = &callbacks_->worker().stats().service(callbacks_->info().service);
  return *serviceStats_;
}

int64_t RouterFilter::remainingMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadlineAt_ -
                                                               std::chrono::steady_clock::now())
      .count();
}

bool RouterFilter::tryRetry(AttemptFailure failure, int status) {
  const config::RouteRule& rule = *rule_->rule;
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
  if (hasDeadline_) {
    // Never start an attempt that cannot finish within the deadline.
    auto need = backoff + policy.perTryTimeout.value_or(std::chrono::milliseconds(1));
    if (remainingMs() < need.count()) return false;
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
  const config::RouteRule& rule = *rule_->rule;
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

namespace {

/// A backend's load-balancer state on one worker.
struct WorkerLbState : proxy::Deletable {
  LbState lb;
};

// The value a hashing policy hashes: a header, a cookie, or the client's address.
bool hashKeyValue(const config::HashKey& key, const proxy::RequestHead& head,
                  const proxy::StreamInfo& info, std::string& out) {
  switch (key.kind) {
    case config::HashKey::Kind::kNone:
      return false;
    case config::HashKey::Kind::kHeader: {
      const proxy::HeaderString* v = head.headers.get(key.name);
      if (v) out = *v;
      return v != nullptr;
    }
    case config::HashKey::Kind::kSourceIp:
      out = peerIp(info.downstreamAddress);
      return !out.empty();
    case config::HashKey::Kind::kCookie: {
      const proxy::HeaderString* cookies = head.headers.get("cookie");
      return cookies && cookieValue(*cookies, key.name, out);
    }
  }
  return false;
}

}  // namespace

const config::EndpointConfig* RouterFilter::pickEndpoint(const proxy::RequestHead& head,
                                                         proxy::Worker& worker) {
  if (direct_) {
    endpointHealth_ = nullptr;
    return direct_.get();
  }
  proxy::Deletable* state = worker.filterState(backend_->stateKey);
  if (!state) state = &worker.setFilterState(backend_->stateKey, std::make_unique<WorkerLbState>());
  PickContext ctx;
  ctx.random1 = worker.random();
  ctx.random2 = worker.random();
  if (backend_->service) {
    const config::LoadBalancerConfig& lb = backend_->service->loadBalancer;
    std::string key;
    if (hashKeyValue(lb.hashKey, head, callbacks_->info(), key)) {
      ctx.hasHash = true;
      ctx.hash = stableHash(key);
    }
    if (lb.slowStart.count() > 0) ctx.now = std::chrono::steady_clock::now();
    if (lb.policy == config::LbPolicy::kLeastRequest) {
      // Requests in flight per endpoint on this worker: the pool's lent connections.
      ctx.active = [this, &worker](size_t i) -> uint32_t {
        return worker.pools().active(backend_->endpoints[i]->addressText);
      };
    }
  }
  ctx.nowMs = static_cast<int64_t>(uv_now(worker.loop()));  // same clock as steadyNowMs()
  bool panic = false;
  int index =
      RouteTable::pickEndpoint(*backend_, static_cast<WorkerLbState*>(state)->lb, ctx, &panic);
  if (panic) serviceStats().panic++;
  if (index < 0) return nullptr;
  endpointHealth_ = backend_->health[static_cast<size_t>(index)].get();
  return backend_->endpoints[static_cast<size_t>(index)];
}

void RouterFilter::recordOutcome(bool failure, int status) {
  if (endpointBreaker_) {
    // The attempt's endpoint breaker judges by the status when there is one.
    int64_t now = steadyNs();
    bool f = status > 0 ? endpointBreaker_->isFailureStatus(status) : failure;
    endpointBreaker_->record(f, now - endpointStartNs_, endpointProbe_, now);
    endpointBreaker_.reset();
  }
  if (!endpointHealth_ || !backend_ || !backend_->service) return;
  const auto& od = backend_->service->outlierDetection;
  if (!od) return;
  if (proxy::recordOutcome(*endpointHealth_, backend_->peers, *od, failure, proxy::steadyNowMs())) {
    serviceStats().outlierEjections++;
  }
}

void RouterFilter::startUpstream() {
  proxy::Worker& worker = callbacks_->worker();
  // Endpoints tried so far, for failover to pick another: only kept when a retry may come.
  if (rule_->rule->retry) tried_.push_back(endpoint_);
  const config::RouteRule& rule = *rule_->rule;
  if (rule.retry && rule.retry->perTryTimeout) {
    perTry_.arm(worker.deadlines(), *rule.retry->perTryTimeout, perTryDone_);
  }
  config::Duration connectTimeout =
      backend_->service->connectTimeout.value_or(worker.bootstrap().upstream.connectTimeout);
  const config::ServiceLimits& limits = backend_->service->limits;
  upstreamReady_ = false;
  // Upgrade and CONNECT tunnels are HTTP/1.1 exchanges whatever the service speaks.
  proxy::LendOptions options;
  options.headRequest = request_->isHead();
  options.http1Only = request_->upgrade;
  options.connectTimeout = connectTimeout;
  if (serviceCounters_) options.budget = {serviceCounters_->connections, limits.maxConnections};
  const config::TlsClientConfig* tls = backend_->service->tls ? &*backend_->service->tls : nullptr;
  proxy::Lent how = proxy::Lent::kFailed;
  upstream_ = worker.pools().lend(*this, endpoint_->address, endpoint_->addressText,
                                  backend_->service->protocol, tls, options, how, &queuedAt_);
  onLent(how);
}

void RouterFilter::onLent(proxy::Lent how) {
  switch (how) {
    case proxy::Lent::kReady:
      onUpstreamReady();
      return;
    case proxy::Lent::kFailed:
      // No socket at all (descriptors exhausted, say): a connect failure like any other,
      // counted, fed to outlier detection and retried by the same policy.
      onUpstreamFailure(Reason::kUpstreamConnectFailure, false);
      return;
    case proxy::Lent::kOverflow:
      serviceStats().connectionOverflow++;
      fail(Reason::kOverflow);
      return;
    case proxy::Lent::kQueued:
      serviceStats().connectionOverflow++;
      break;
    case proxy::Lent::kConnecting:
      break;
  }
  // Waiting for a connection (being made, or in line for one at maxConnections): Envoy's
  // max_pending_requests, all workers together.
  if (serviceCounters_ && !countedPending_) {
    countedPending_ = true;
    if (serviceCounters_->pending.fetch_add(1, std::memory_order_relaxed) >=
        backend_->service->limits.maxPendingRequests) {
      releaseUpstream();
      fail(Reason::kOverflow);
    }
  }
}

void RouterFilter::onUpstreamGranted(proxy::UpstreamRequest& request, proxy::Lent how) {
  queuedAt_ = nullptr;
  upstream_ = &request;
  onLent(how);
}

void RouterFilter::onUpstreamReady() {
  upstreamReady_ = true;
  if (countedPending_) {
    countedPending_ = false;
    serviceCounters_->pending.fetch_sub(1, std::memory_order_relaxed);
  }
  auto& info = callbacks_->info();
  info.upstreamRequestSent = true;
  if (request_->isConnect()) {
    // CONNECT ends here: the tunnel runs from Tether to the endpoint.
    tunnel_ = true;
    timeout_.cancel();
    upstream_->enterTunnel();
    proxy::ResponseHead ok;
    ok.status = 200;
    responseStarted_ = true;
    callbacks_->encodeHeaders(ok, false);
    callbacks_->switchToTunnel();
    if (!pending_.empty()) {
      upstream_->sendData(pending_, false);
      pending_.clear();
    }
    return;
  }
  sendRequestHead();
}

void RouterFilter::sendRequestHead() {
  proxy::RequestExtras extras;
  if (propagateDeadline_ &&
      (deadlineFromCaller_ || callbacks_->info().direction == config::Direction::kOutbound)) {
    // The next hop learns how long it has left; its sidecar enforces it.
    // A little less than what is left (a tenth, at most 50 ms): the next hop gives up first,
    // so its deadline_exceeded answer, not this hop's own timeout, reaches the caller (the
    // two would otherwise race to within the network latency).
    int64_t left = remainingMs();
    extras.timeoutMs = std::max<int64_t>(1, left - std::min<int64_t>(50, left / 10));
  }
  extras.attempt = attempt_;
  if (signer_) signRequest();
  upstream_->sendHead(*request_, endpoint_->addressText, extras, bodyless_);
  if (attempt_ > 1) {
    // A retry: the whole request is in hand (tryRetry checked), so send it in one go.
    if (!bodyless_) upstream_->sendData(replay_, true);
    requestEndSent_ = true;
    return;
  }
  if (!bodyless_ && (!pending_.empty() || (requestEnd_ && !pendingTrailers_))) {
    std::string body;
    body.swap(pending_);
    upstream_->sendData(body, requestEnd_ && !pendingTrailers_);
  }
  if (pendingTrailers_) onRequestTrailers(trailers_);
  if (requestEnd_) requestEndSent_ = true;
  if (pausedDownstream_ && upstream_->bufferedBytes() < callbacks_->worker().lowWatermark()) {
    pausedDownstream_ = false;
    callbacks_->setRequestReadPaused(false);
  }
}

bool RouterFilter::hashBody(std::string_view data, bool end) {
  hashedBytes_ += data.size();
  uint64_t limit = std::min<uint64_t>(signer_->config.maxBodyBytes,
                                      callbacks_->worker().bootstrap().http.bufferHighWatermark);
  if (hashedBytes_ > limit) {
    bodyHash_.reset();
    if (!signer_->config.allowUnsignedPayload) {
      timeout_.cancel();
      callbacks_->sendLocalReply(413, "body too large to sign\n", Reason::kBodyTooLarge);
      return false;
    }
    payloadHash_ = proxy::hmac::kUnsignedPayload;
  } else {
    bodyHash_->update(data);
    if (!end) return true;
    payloadHash_ = bodyHash_->finishHex();
    bodyHash_.reset();
  }
  if (awaitingBody_) {
    awaitingBody_ = false;
    afterFaultDelay();
  }
  return true;
}

void RouterFilter::signRequest() {
  const HmacRule::Key& key = *signer_->signingKey;
  std::string_view authority =
      request_->authority.empty() ? std::string_view(endpoint_->addressText) : request_->authority;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  // Tether's three headers go on first (replacing a previous attempt's), then the
  // signature over the request as it will be sent.
  request_->headers.set(proxy::hmac::kContentHeader, payloadHash_);
  request_->headers.set(proxy::hmac::kDateHeader, proxy::hmac::formatDate(now));
  request_->headers.set(proxy::hmac::kNonceHeader, proxy::hmac::newNonce());
  request_->headers.remove("authorization");
  proxy::hmac::RequestView view{request_->method, request_->path, authority, &request_->headers};
  request_->headers.add("authorization", proxy::hmac::authorization(view, key.id, key.secret->get(),
                                                                    signer_->signedHeaders));
  proxy::WorkerStats& stats = callbacks_->worker().stats();
  stats.countPair(stats.auth, signer_->config.name, "signed");
}

FilterStatus RouterFilter::onRequestData(std::string& data, bool endStream) {
  requestEnd_ = endStream;
  if (bodyHash_ && !hashBody(data, endStream)) return FilterStatus::kStopIteration;
  if (canReplay_ && !tunnel_ && rule_->rule->retry &&
      failureMode_ != config::FailureMode::kFailfast) {
    if (replay_.size() + data.size() > kReplayLimit) {
      canReplay_ = false;
      std::string().swap(replay_);
    } else {
      replay_.append(data);
    }
  }
  if (tunnel_ && endStream) {
    // The client closed its side of the tunnel; so does the upstream connection.
    if (upstream_) upstream_->close();
    upstream_ = nullptr;
    if (!responseDone_) {
      responseDone_ = true;
      std::string empty;
      callbacks_->encodeData(empty, true);
    }
    return FilterStatus::kStopIteration;
  }
  if (!upstream_ || !upstreamReady_) {
    pending_.append(data);
    if (!pausedDownstream_ && pending_.size() > callbacks_->worker().highWatermark()) {
      pausedDownstream_ = true;
      callbacks_->setRequestReadPaused(true);
    }
    return FilterStatus::kStopIteration;
  }
  upstream_->sendData(data, endStream);
  if (endStream) requestEndSent_ = true;
  return FilterStatus::kStopIteration;
}

FilterStatus RouterFilter::onRequestTrailers(proxy::HeaderMap& trailers) {
  requestEnd_ = true;
  if (bodyHash_ && !hashBody({}, true)) return FilterStatus::kStopIteration;
  canReplay_ = false;  // trailers are not kept for a replay
  if (!upstream_ || !upstreamReady_) {
    trailers_ = std::move(trailers);
    pendingTrailers_ = true;
    return FilterStatus::kStopIteration;
  }
  pendingTrailers_ = false;
  upstream_->sendTrailers(trailers);
  requestEndSent_ = true;
  return FilterStatus::kStopIteration;
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

void RouterFilter::fail(Reason reason) {
  timeout_.cancel();
  faultDelay_.cancel();
  perTry_.cancel();
  backoff_.cancel();
  if (!responseStarted_) {
    releaseUpstream();
    if (replyFailsafe()) return;
  }
  releaseUpstream();
  if (responseStarted_) {
    callbacks_->resetStream();
    return;
  }
  int status = proxy::defaultStatus(reason);
  std::string body = std::string(proxy::reasonName(reason)) + "\n";
  callbacks_->sendLocalReply(status, body, reason);
}

void RouterFilter::onDeadline() {
  serviceStats().upstreamTimeouts++;
  // When the caller's budget was the binding limit, say so: it is not this route's fault.
  fail(deadlineFromCaller_ ? Reason::kDeadlineExceeded : Reason::kUpstreamTimeout);
}

void RouterFilter::onUpstreamHeaders(proxy::ResponseHead& head, bool endStream) {
  perTry_.cancel();
  // Outlier detection counts gateway errors and 5xx answers as the endpoint's failures.
  recordOutcome(head.status >= 500, head.status);
  // A remote Tether that rejected the request (rate limit, open breaker) says when to come
  // back (Retry-After): retrying now would only add load where it is already refused.
  const proxy::HeaderString* remoteReason = head.headers.get("x-tether-reason");
  bool remoteRejected =
      remoteReason && (*remoteReason == "rate_limited" || *remoteReason == "circuit_open");
  // A gRPC call that failed before any message answers trailers-only: its grpc-status is in
  // this head, and the attempt can still be replaced.
  int grpcStatus = -1;
  if (endStream && callbacks_->info().grpc && !retryOn_->grpcStatuses.empty()) {
    if (const proxy::HeaderString* g = head.headers.get("grpc-status")) {
      std::from_chars(g->data(), g->data() + g->size(), grpcStatus);
    }
  }
  bool grpcFailed = grpcStatus > 0 && retryOn_->failedGrpcStatus(grpcStatus);
  if (!tunnel_ && head.status != 101 && !remoteRejected &&
      (retryOn_->failedStatus(head.status) || grpcFailed ||
       (failureMode_ == config::FailureMode::kFailsafe && head.status >= 500))) {
    // A failed attempt: nothing of it has reached the client yet, so it can be replaced.
    if (grpcFailed ? tryRetry(AttemptFailure::kGrpcStatus, grpcStatus)
                   : tryRetry(AttemptFailure::kStatus, head.status)) {
      return;
    }
    if (failureMode_ == config::FailureMode::kFailsafe) {
      timeout_.cancel();
      releaseUpstream();
      replyFailsafe();
      return;
    }
  }
  responseStarted_ = true;
  if (head.status == 101 && request_->upgrade) {
    tunnel_ = true;
    timeout_.cancel();
    upstream_->enterTunnel();
    callbacks_->encodeHeaders(head, false);
    callbacks_->switchToTunnel();
    return;
  }
  if (endStream) {
    responseDone_ = true;
    timeout_.cancel();
  }
  callbacks_->encodeHeaders(head, endStream);
}

void RouterFilter::onUpstreamData(std::string& data, bool endStream) {
  if (endStream) {
    responseDone_ = true;
    timeout_.cancel();
  }
  callbacks_->encodeData(data, endStream);
}

void RouterFilter::onUpstreamTrailers(proxy::HeaderMap& trailers) {
  responseDone_ = true;
  timeout_.cancel();
  callbacks_->encodeTrailers(trailers);
}

void RouterFilter::onUpstreamReset() {
  upstream_ = nullptr;
  serviceStats().upstreamResets++;
  fail(Reason::kUpstreamReset);
}

void RouterFilter::onUpstreamWatermark(bool aboveHigh) {
  // A slow upstream reader pauses the client; its drain resumes it.
  if (aboveHigh == pausedDownstream_) return;
  pausedDownstream_ = aboveHigh;
  callbacks_->setRequestReadPaused(aboveHigh);
}

void RouterFilter::onResponseWatermark(bool aboveHigh) {
  // A slow client pauses reading the upstream's response.
  if (!upstream_ || aboveHigh == pausedUpstream_) return;
  pausedUpstream_ = aboveHigh;
  upstream_->readDisable(aboveHigh);
}

void RouterFilter::releaseUpstream() {
  if (queuedAt_) {
    queuedAt_->cancelWait(*this);
    queuedAt_ = nullptr;
  }
  if (!upstream_) return;
  proxy::UpstreamRequest* c = upstream_;
  upstream_ = nullptr;
  if (pausedUpstream_) {
    pausedUpstream_ = false;
    c->readDisable(false);
  }
  c->release(requestEndSent_ && responseDone_);
}

void RouterFilter::onDestroy() {
  pacing_.cancel();
  redisTimeout_.cancel();
  if (redisCall_) redisCall_->cancel();
  redisCall_ = nullptr;
  for (size_t i = 0; i < slotCount_; ++i) slots_[i]->fetch_sub(1, std::memory_order_relaxed);
  slotCount_ = 0;
  if (serviceCounters_) {
    serviceCounters_->active.fetch_sub(1, std::memory_order_relaxed);
    if (countedPending_) serviceCounters_->pending.fetch_sub(1, std::memory_order_relaxed);
    if (countedRetry_) serviceCounters_->retries.fetch_sub(1, std::memory_order_relaxed);
    serviceCounters_ = nullptr;
  }
  timeout_.cancel();
  faultDelay_.cancel();
  perTry_.cancel();
  backoff_.cancel();
  releaseUpstream();
  if (countedActive_) {
    auto& stats = serviceStats();
    stats.activeRequests--;
    stats.activeRetries -= retriesInFlight_;
  }
}

}  // namespace tether::filters
