#include "proxy/worker/stats.h"

#include <algorithm>

namespace tether::proxy {

void DurationHistogram::observe(double seconds) {
  size_t i = 0;
  while (i < kDurationBuckets.size() && seconds > kDurationBuckets[i]) ++i;
  ++counts[i];
  ++count;
  sum += seconds;
}

void DurationHistogram::merge(const DurationHistogram& other) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum += other.sum;
}

void RouteStats::record(int code, Reason reason, double seconds, int grpcStatus) {
  duration.observe(seconds);
  // The status is the upstream's to choose: outside 100..599 it is counted as code="other"
  // (0 here), so no upstream can mint label values.
  if (code < 100 || code > 599) code = 0;
  if (grpcStatus >= 0) {
    auto it = std::find_if(grpc.begin(), grpc.end(),
                           [&](const GrpcCount& g) { return g.status == grpcStatus; });
    if (it == grpc.end()) {
      grpc.push_back(GrpcCount{grpcStatus, 1});
    } else {
      ++it->count;
    }
  }
  for (auto& c : codes) {
    if (c.code == code && c.reason == reason) {
      ++c.count;
      return;
    }
  }
  codes.push_back(CodeCount{code, reason, 1});
}

void WorkerStats::recordRequest(config::Direction direction, std::string_view service,
                                std::string_view route, int code, Reason reason, double seconds,
                                int grpcStatus) {
  keyScratch_.clear();
  keyScratch_ += config::toString(direction);
  keyScratch_ += '\0';
  keyScratch_ += service;
  keyScratch_ += '\0';
  keyScratch_ += route;
  auto it = routes.find(std::string_view(keyScratch_));
  if (it == routes.end()) {
    RouteStats rs;
    rs.direction = config::toString(direction);
    rs.service = service;
    rs.route = route;
    it = routes.emplace(keyScratch_, std::move(rs)).first;
  }
  it->second.record(code, reason, seconds, grpcStatus);
}

void WorkerStats::recordLocal(config::Direction direction, int code, Reason reason) {
  recordRequest(direction, "", "", code, reason, 0);
}

ServiceStats& WorkerStats::service(std::string_view name) {
  auto it = services.find(name);
  if (it == services.end()) it = services.emplace(std::string(name), ServiceStats{}).first;
  return it->second;
}

void WorkerStats::countPair(PairCounts& counts, std::string_view a, std::string_view b) {
  keyScratch_.assign(a);
  keyScratch_ += '\0';
  keyScratch_ += b;
  auto it = counts.find(std::string_view(keyScratch_));
  if (it == counts.end()) it = counts.emplace(keyScratch_, 0).first;
  ++it->second;
}

void WorkerStats::merge(const WorkerStats& other) {
  for (const auto& [k, v] : other.laneRequests) laneRequests[k] += v;
  for (const auto& [k, v] : other.laneFallbacks) laneFallbacks[k] += v;
  for (const auto& [k, v] : other.protocols) protocols[k] += v;
  for (const auto& [k, v] : other.http2Abuse) http2Abuse[k] += v;
  for (const auto& [k, v] : other.acceptPauses) acceptPauses[k] += v;
  for (const auto& [k, v] : other.auth) auth[k] += v;
  for (const auto& [k, v] : other.callers) callers[k] += v;
  http2Streams += other.http2Streams;
  detectDuration.merge(other.detectDuration);
  tcpConnections += other.tcpConnections;
  tcpConnectFailures += other.tcpConnectFailures;
  tcpBytesReceived += other.tcpBytesReceived;
  tcpBytesSent += other.tcpBytesSent;
  for (const auto& [key, rs] : other.routes) {
    auto it = routes.find(key);
    if (it == routes.end()) {
      routes.emplace(key, rs);
      continue;
    }
    for (const auto& c : rs.codes) {
      bool found = false;
      for (auto& mine : it->second.codes) {
        if (mine.code == c.code && mine.reason == c.reason) {
          mine.count += c.count;
          found = true;
          break;
        }
      }
      if (!found) it->second.codes.push_back(c);
    }
    for (const auto& g : rs.grpc) {
      auto& mine = it->second.grpc;
      auto m = std::find_if(mine.begin(), mine.end(),
                            [&](const RouteStats::GrpcCount& x) { return x.status == g.status; });
      if (m == mine.end()) {
        mine.push_back(g);
      } else {
        m->count += g.count;
      }
    }
    it->second.duration.merge(rs.duration);
  }
  for (const auto& [name, ss] : other.services) {
    ServiceStats& mine = service(name);
    mine.upstreamRequests += ss.upstreamRequests;
    mine.upstreamConnectFailures += ss.upstreamConnectFailures;
    mine.upstreamResets += ss.upstreamResets;
    mine.upstreamTimeouts += ss.upstreamTimeouts;
    mine.retries += ss.retries;
    mine.retryBudgetExhausted += ss.retryBudgetExhausted;
    mine.outlierEjections += ss.outlierEjections;
    mine.panic += ss.panic;
    mine.connectionOverflow += ss.connectionOverflow;
    mine.activeRequests += ss.activeRequests;
    mine.activeRetries += ss.activeRetries;
  }
  downstreamConnectionsActive += other.downstreamConnectionsActive;
  downstreamConnectionsTotal += other.downstreamConnectionsTotal;
  downstreamOverflow += other.downstreamOverflow;
  upstreamConnectionsActive += other.upstreamConnectionsActive;
  upstreamConnectionsTotal += other.upstreamConnectionsTotal;
  upstreamConnectionsReused += other.upstreamConnectionsReused;
  accessLogLines += other.accessLogLines;
  accessLogDropped += other.accessLogDropped;
}

}  // namespace tether::proxy
