#include "filters/router/router_filter.h"

#include <algorithm>
#include <charconv>

#include "filters/common/reply.h"
#include "filters/common/request_key.h"
#include "proxy/stream/snapshot.h"
#include "proxy/upstream/http1_client.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;
using proxy::Reason;

namespace {

// A request body larger than this is streamed without a copy, and so cannot be retried.
constexpr size_t kReplayLimit = 64 * 1024;

}  // namespace

RouterFilter::RouterFilter(std::shared_ptr<const RouteTable> table,
                           std::shared_ptr<const filters::Governance> governance)
    : table_(std::move(table)), governance_(std::move(governance)) {}

RouterFilter::~RouterFilter() { releaseUpstream(); }

FilterStatus RouterFilter::onRequestHeaders(proxy::RequestHead& head, bool endStream) {
  auto& info = callbacks_->info();
  route_ = &routeOf(*callbacks_);
  route_->timeout->handOver(*this);
  request_ = &head;
  requestEnd_ = endStream;
  bodyless_ = endStream;
  backend_ = route_->backend;
  serviceCounters_ = route_->counters;
  if (!chooseLane()) return FilterStatus::kStopIteration;
  if (governance_) {
    // The first perEndpoint rule that matches judges this request's endpoints.
    const filters::Governance::Subject subject = route_->subject(info, head);
    for (const auto& breaker : governance_->breakers()) {
      if (breaker->config().perEndpoint &&
          filters::Governance::matches(breaker->config().target, subject)) {
        endpointRule_ = breaker.get();
        break;
      }
    }
  }
  proxy::Worker& worker = callbacks_->worker();
  endpoint_ = pickEndpoint(head, worker);
  if (!endpoint_) {
    callbacks_->sendLocalReply(503, "no healthy upstream\n", Reason::kNoHealthyUpstream);
    return FilterStatus::kStopIteration;
  }
  info.upstreamAddress = endpoint_->addressText;
  rewriteHead(head);
  const config::RouteRule& rule = route_->routeRule();
  failureMode_ = effectiveFailureMode(rule);
  retryOn_ = rule.retry ? &rule.retry->on : &kNoRetry;
  if (const proxy::HeaderString* a = head.headers.get(proxy::kAttemptHeader)) {
    retriesAllowed_ = *a == "1";
  }
  head.headers.remove(proxy::kAttemptHeader);
  if (!admitEndpoint()) return FilterStatus::kStopIteration;
  auto& stats = serviceStats();
  stats.upstreamRequests++;
  stats.activeRequests++;
  countedActive_ = true;
  startUpstream();
  return FilterStatus::kStopIteration;
}

void RouterFilter::rewriteHead(proxy::RequestHead& head) {
  const config::RouteRule& rule = route_->routeRule();
  for (const auto& name : rule.removeRequestHeaders) head.headers.remove(name);
  for (const auto& [name, value] : rule.addRequestHeaders) {
    std::string lower = name;
    proxy::toLowerInPlace(lower);
    head.headers.set(lower, value);
  }
  if (rule.prefixRewrite && rule.match.pathPrefix) {
    head.path = *rule.prefixRewrite + head.path.substr(rule.match.pathPrefix->size());
  }
  const auto& info = callbacks_->info();
  const auto& http = callbacks_->worker().bootstrap().http;
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
}

proxy::ServiceStats& RouterFilter::serviceStats() {
  // The service is set once, at routing; the worker's map never drops an entry.
  if (!serviceStats_)
    serviceStats_ = &callbacks_->worker().stats().service(callbacks_->info().service);
  return *serviceStats_;
}

void RouterFilter::startUpstream() {
  proxy::Worker& worker = callbacks_->worker();
  // Endpoints tried so far, for failover to pick another: only kept when a retry may come.
  const config::RouteRule& rule = route_->routeRule();
  if (rule.retry) tried_.push_back(endpoint_);
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
    route_->timeout->cancel();
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
  const RouteTimeout& deadline = *route_->timeout;
  if (deadline.armed() && deadline.travels() &&
      (deadline.fromCaller() || callbacks_->info().direction == config::Direction::kOutbound)) {
    // The next hop learns how long it has left; its sidecar enforces it.
    // A little less than what is left (a tenth, at most 50 ms): the next hop gives up first,
    // so its deadline_exceeded answer, not this hop's own timeout, reaches the caller (the
    // two would otherwise race to within the network latency).
    int64_t left = deadline.remainingMs();
    extras.timeoutMs = std::max<int64_t>(1, left - std::min<int64_t>(50, left / 10));
  }
  extras.attempt = attempt_;
  // Filters that change each attempt (a signature's date and nonce) do it now.
  callbacks_->runUpstreamHooks(*request_, endpoint_->addressText);
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

FilterStatus RouterFilter::onRequestData(std::string& data, bool endStream) {
  requestEnd_ = endStream;
  if (canReplay_ && !tunnel_ && route_->routeRule().retry &&
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
      route_->timeout->cancel();
      releaseUpstream();
      replyFailsafe();
      return;
    }
  }
  responseStarted_ = true;
  if (head.status == 101 && request_->upgrade) {
    tunnel_ = true;
    route_->timeout->cancel();
    upstream_->enterTunnel();
    callbacks_->encodeHeaders(head, false);
    callbacks_->switchToTunnel();
    return;
  }
  if (endStream) {
    responseDone_ = true;
    route_->timeout->cancel();
  }
  callbacks_->encodeHeaders(head, endStream);
}

void RouterFilter::onUpstreamData(std::string& data, bool endStream) {
  if (endStream) {
    responseDone_ = true;
    route_->timeout->cancel();
  }
  callbacks_->encodeData(data, endStream);
}

void RouterFilter::onUpstreamTrailers(proxy::HeaderMap& trailers) {
  responseDone_ = true;
  route_->timeout->cancel();
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
  if (serviceCounters_) {
    if (countedPending_) serviceCounters_->pending.fetch_sub(1, std::memory_order_relaxed);
    if (countedRetry_) serviceCounters_->retries.fetch_sub(1, std::memory_order_relaxed);
    serviceCounters_ = nullptr;
  }
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
