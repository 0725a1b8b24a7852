// Choosing and judging endpoints: the lane, the load balancer, per-endpoint breakers and
// passive outlier detection.

#include <algorithm>

#include "filters/circuit_breaker/circuit_breaker_filter.h"
#include "filters/common/reply.h"
#include "filters/common/request_key.h"
#include "filters/router/router_filter.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

bool RouterFilter::chooseLane() {
  auto& info = callbacks_->info();
  if (info.lane.empty() || info.direction != config::Direction::kOutbound) return true;
  if (const CompiledBackend* onLane = backend_->lane(info.lane)) {
    backend_ = onLane;
    return true;
  }
  const config::TrafficLabelConfig* label = table_->labelRule(info.lane);
  if (label && label->fallback == config::TrafficLabelConfig::Fallback::kNone) {
    callbacks_->sendLocalReply(503, "no endpoint on lane " + info.lane + "\n",
                               proxy::Reason::kNoHealthyUpstream);
    return false;
  }
  // No endpoint on the lane: the baseline serves it, and the fallback is counted.
  proxy::WorkerStats& stats = callbacks_->worker().stats();
  stats.countPair(stats.laneFallbacks, info.service,
                  table_->knownLane(info.lane) ? info.lane : "other");
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
  if (route_->direct) {
    endpointHealth_ = nullptr;
    return route_->direct.get();
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
    if (lb.slowStart.count() > 0) ctx.now = worker.clock().steadyNow();
    if (lb.policy == config::LbPolicy::kLeastRequest) {
      // Requests in flight per endpoint on this worker: the pool's lent connections.
      ctx.active = [this, &worker](size_t i) -> uint32_t {
        return worker.pools().active(backend_->endpoints[i]->addressText);
      };
    }
  }
  ctx.nowMs = worker.clock().loopMs(worker.loop());
  bool panic = false;
  int index =
      RouteTable::pickEndpoint(*backend_, static_cast<WorkerLbState*>(state)->lb, ctx, &panic);
  if (panic) serviceStats().panic++;
  if (index < 0) return nullptr;
  endpointHealth_ = backend_->health[static_cast<size_t>(index)].get();
  return backend_->endpoints[static_cast<size_t>(index)];
}

bool RouterFilter::admitEndpoint() {
  if (!endpointRule_) return true;
  proxy::Worker& worker = callbacks_->worker();
  int64_t now = callbacks_->worker().clock().nowNs();
  // Endpoints whose breaker refused: the load balancer is asked for others, a few times
  // over (round robin visits them all; random may need more draws).
  std::array<const config::EndpointConfig*, 16> refused{};
  size_t refusedCount = 0;
  const size_t draws = std::min<size_t>(16, 2 * backend_->endpoints.size());
  while (true) {
    std::shared_ptr<filters::CircuitBreaker> b =
        endpointRule_->forEndpoint(endpoint_->addressText, now);
    double r = static_cast<double>(worker.random() % 1'000'000) / 1e6;
    filters::CircuitBreaker::Admission a = b->admit(now, r);
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
  replyCircuitOpen(*callbacks_, endpointRule_->config());
  return false;
}

void RouterFilter::recordOutcome(bool failure, int status) {
  if (endpointBreaker_) {
    // The attempt's endpoint breaker judges by the status when there is one.
    int64_t now = callbacks_->worker().clock().nowNs();
    bool f = status > 0 ? endpointBreaker_->isFailureStatus(status) : failure;
    endpointBreaker_->record(f, now - endpointStartNs_, endpointProbe_, now);
    endpointBreaker_.reset();
  }
  if (!endpointHealth_ || !backend_ || !backend_->service) return;
  const auto& od = backend_->service->outlierDetection;
  if (!od) return;
  if (proxy::recordOutcome(*endpointHealth_, backend_->peers, *od, failure,
                           callbacks_->worker().clock().nowMs())) {
    serviceStats().outlierEjections++;
  }
}

void RouterFilter::onStreamComplete(const proxy::StreamInfo& info) {
  if (!endpointBreaker_) return;
  int64_t now = callbacks_->worker().clock().nowNs();
  bool cancelled = info.status == 499;
  // An attempt whose outcome was never seen (the route timeout, the client leaving) is
  // judged by how the request ended; a cancelled one only when it was a probe.
  if (!cancelled || endpointProbe_) {
    endpointBreaker_->record(breakerFailure(*endpointBreaker_, info) || cancelled,
                             now - endpointStartNs_, endpointProbe_, now);
  }
  endpointBreaker_.reset();
}

}  // namespace tether::filters
