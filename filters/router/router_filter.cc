#include "filters/router/router_filter.h"

#include "proxy/http1_encoding.h"
#include "proxy/snapshot.h"
#include "proxy/worker.h"

namespace tether::filters {

using proxy::FilterStatus;
using proxy::Reason;

namespace {

// Envoy's default route timeout: a hung upstream must not hold a stream forever.
constexpr config::Duration kDefaultRouteTimeout = std::chrono::seconds(15);

std::string peerIp(const std::string& peer) {
  size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

}  // namespace

RouterFilter::RouterFilter(std::shared_ptr<const RouteTable> table) : table_(std::move(table)) {}

RouterFilter::~RouterFilter() { releaseUpstream(); }

FilterStatus RouterFilter::onRequestHeaders(proxy::RequestHead& head, bool endStream) {
  auto& info = callbacks_->info();
  request_ = &head;
  requestEnd_ = endStream;
  bodyless_ = endStream;
  rule_ = info.direction == config::Direction::kInbound ? table_->inbound()
                                                        : table_->matchOutbound(head);
  if (!rule_) {
    callbacks_->sendLocalReply(404, "no route\n", Reason::kNoRoute);
    return FilterStatus::kStopIteration;
  }
  info.route = rule_->route->name;  // views into the pinned snapshot
  proxy::Worker& worker = callbacks_->worker();
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
    if (const std::string* xff = head.headers.get("x-forwarded-for")) {
      head.headers.set("x-forwarded-for", *xff + ", " + ip);
    } else {
      head.headers.add("x-forwarded-for", ip);
    }
  }
  if (http.addVia) {
    if (const std::string* via = head.headers.get("via")) {
      head.headers.set("via", *via + ", 1.1 tether");
    } else {
      head.headers.add("via", "1.1 tether");
    }
  }
  config::Duration timeout = rule.timeout.value_or(kDefaultRouteTimeout);
  if (timeout.count() > 0) timeout_.arm(worker.deadlines(), timeout, *this);
  if (rule.fault) {
    const config::FaultConfig& f = *rule.fault;
    if (f.delay && roll(f.delayPercent)) {
      // The delay counts against the route timeout, as a slow upstream would.
      faultDelay_.arm(worker.deadlines(), *f.delay, faultDelayDone_);
      return FilterStatus::kStopIteration;
    }
  }
  afterFaultDelay();
  return FilterStatus::kStopIteration;
}

bool RouterFilter::roll(double percent) {
  // In hundredths of a percent: 12.5 -> 1250 of 10,000.
  return static_cast<double>(callbacks_->worker().random() % 10000) < percent * 100;
}

void RouterFilter::afterFaultDelay() {
  const config::RouteRule& rule = *rule_->rule;
  if (rule.fault && rule.fault->abortStatus && roll(rule.fault->abortPercent)) {
    timeout_.cancel();
    callbacks_->sendLocalReply(*rule.fault->abortStatus, "fault injected\n",
                               Reason::kFaultInjected);
    return;
  }
  callbacks_->worker().stats().service(callbacks_->info().service).upstreamRequests++;
  startUpstream();
}

namespace {

/// A backend's load-balancer state on one worker.
struct WorkerLbState : proxy::Deletable {
  LbState lb;
};

// The value a hashing policy hashes: a header, a cookie, or the client's address.
bool hashKeyValue(const config::HashKey& key, const proxy::RequestHead& head,
                  const proxy::StreamInfo& info, std::string_view& out) {
  switch (key.kind) {
    case config::HashKey::Kind::kNone:
      return false;
    case config::HashKey::Kind::kHeader: {
      const std::string* v = head.headers.get(key.name);
      if (v) out = *v;
      return v != nullptr;
    }
    case config::HashKey::Kind::kSourceIp: {
      std::string_view peer = info.downstreamAddress;
      out = peer.substr(0, peer.rfind(':'));
      return !out.empty();
    }
    case config::HashKey::Kind::kCookie: {
      const std::string* cookies = head.headers.get("cookie");
      if (!cookies) return false;
      std::string_view rest = *cookies;
      while (!rest.empty()) {
        size_t semi = rest.find(';');
        std::string_view pair = rest.substr(0, semi);
        while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
        size_t eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == key.name) {
          out = pair.substr(eq + 1);
          return true;
        }
        if (semi == std::string_view::npos) break;
        rest.remove_prefix(semi + 1);
      }
      return false;
    }
  }
  return false;
}

}  // namespace

const config::EndpointConfig* RouterFilter::pickEndpoint(const proxy::RequestHead& head,
                                                         proxy::Worker& worker) {
  proxy::Deletable* state = worker.filterState(backend_->stateKey);
  if (!state) state = &worker.setFilterState(backend_->stateKey, std::make_unique<WorkerLbState>());
  PickContext ctx;
  ctx.random1 = worker.random();
  ctx.random2 = worker.random();
  if (backend_->service) {
    const config::LoadBalancerConfig& lb = backend_->service->loadBalancer;
    std::string_view key;
    if (hashKeyValue(lb.hashKey, head, callbacks_->info(), key)) {
      ctx.hasHash = true;
      ctx.hash = stableHash(key);
    }
    if (lb.slowStart.count() > 0) ctx.now = std::chrono::steady_clock::now();
    if (lb.policy == config::LbPolicy::kLeastRequest) {
      // Requests in flight per endpoint on this worker: the pool's lent connections.
      ctx.active = [this, &worker](size_t i) -> uint32_t {
        const config::EndpointConfig* e = backend_->endpoints[i];
        const proxy::UpstreamPool& pool = worker.pools().get(e->address, e->addressText);
        return static_cast<uint32_t>(pool.connectionCount() - pool.idleCount());
      };
    }
  }
  return RouteTable::pickEndpoint(*backend_, static_cast<WorkerLbState*>(state)->lb, ctx);
}

void RouterFilter::startUpstream() {
  proxy::Worker& worker = callbacks_->worker();
  config::Duration connectTimeout =
      backend_->service->connectTimeout.value_or(worker.bootstrap().upstream.connectTimeout);
  bool reused = false;
  upstreamReady_ = false;
  upstream_ = worker.pools()
                  .get(endpoint_->address, endpoint_->addressText)
                  .acquire(*this, request_->isHead(), connectTimeout, reused);
  if (!upstream_) {
    fail(Reason::kUpstreamConnectFailure);
    return;
  }
  if (reused) onUpstreamReady();
}

void RouterFilter::onUpstreamReady() {
  upstreamReady_ = true;
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
      upstream_->write(pending_);
      pending_.clear();
    }
    return;
  }
  sendRequestHead();
}

void RouterFilter::sendRequestHead() {
  const proxy::RequestHead& r = *request_;
  // Encoded each time it is sent (at most twice: the keep-alive race retry), into the
  // worker's scratch string, so a request head costs no allocation.
  std::string& head = callbacks_->worker().scratch();
  head.clear();
  head += r.method;
  head += ' ';
  head += r.path;
  head += " HTTP/1.1\r\nhost: ";
  head += r.authority.empty() ? std::string_view(endpoint_->addressText)
                              : std::string_view(r.authority);
  head += "\r\n";
  proxy::appendHeaderFields(head, r.headers);
  chunked_ = false;
  if (r.upgrade) {
    head += "connection: upgrade\r\nupgrade: ";
    head += r.upgradeProtocol;
    head += "\r\n";
  } else if (!bodyless_ && !r.headers.get("content-length")) {
    head += "transfer-encoding: chunked\r\n";
    chunked_ = true;
  }
  head += "\r\n";
  upstream_->write(head);
  if (!pending_.empty() || (requestEnd_ && !requestEndSent_ && chunked_)) {
    std::string body;
    body.swap(pending_);
    writeBody(body, requestEnd_ && !pendingTrailers_);
  }
  if (pendingTrailers_) onRequestTrailers(trailers_);
  if (requestEnd_) requestEndSent_ = true;
  if (pausedDownstream_ && upstream_->bufferedBytes() < callbacks_->worker().lowWatermark()) {
    pausedDownstream_ = false;
    callbacks_->setRequestReadPaused(false);
  }
}

void RouterFilter::writeBody(std::string_view data, bool endStream) {
  proxy::writeBody(upstream_->connection(), data, endStream, chunked_ && !tunnel_);
}

FilterStatus RouterFilter::onRequestData(std::string& data, bool endStream) {
  requestEnd_ = endStream;
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
  writeBody(data, endStream);
  if (endStream) requestEndSent_ = true;
  return FilterStatus::kStopIteration;
}

FilterStatus RouterFilter::onRequestTrailers(proxy::HeaderMap& trailers) {
  requestEnd_ = true;
  if (!upstream_ || !upstreamReady_) {
    trailers_ = std::move(trailers);
    pendingTrailers_ = true;
    return FilterStatus::kStopIteration;
  }
  pendingTrailers_ = false;
  if (chunked_) {
    proxy::writeTrailers(upstream_->connection(), trailers, callbacks_->worker().scratch());
  }
  requestEndSent_ = true;
  return FilterStatus::kStopIteration;
}

void RouterFilter::onUpstreamFailure(Reason reason, bool reused) {
  upstream_ = nullptr;
  upstreamReady_ = false;
  auto& stats = callbacks_->worker().stats().service(callbacks_->info().service);
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
  fail(reason);
}

void RouterFilter::fail(Reason reason) {
  timeout_.cancel();
  faultDelay_.cancel();
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
  callbacks_->worker().stats().service(callbacks_->info().service).upstreamTimeouts++;
  fail(Reason::kUpstreamTimeout);
}

void RouterFilter::onUpstreamHeaders(proxy::ResponseHead& head, bool endStream) {
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
  callbacks_->worker().stats().service(callbacks_->info().service).upstreamResets++;
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
  if (!upstream_) return;
  proxy::UpstreamConnection* c = upstream_;
  upstream_ = nullptr;
  if (pausedUpstream_) {
    pausedUpstream_ = false;
    c->readDisable(false);
  }
  c->release(requestEndSent_ && responseDone_);
}

void RouterFilter::onDestroy() {
  timeout_.cancel();
  faultDelay_.cancel();
  releaseUpstream();
}

}  // namespace tether::filters
