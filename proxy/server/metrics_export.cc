#include "proxy/server/metrics_export.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <sstream>

namespace tether::proxy {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(const std::string& name, const std::string& help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

ClientMetric counter(double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

ClientMetric gauge(double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

ClientMetric histogramMetric(const DurationHistogram& d, std::vector<ClientMetric::Label> labels) {
  ClientMetric h;
  h.label = std::move(labels);
  h.histogram.sample_count = d.count;
  h.histogram.sample_sum = d.sum;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < d.counts.size(); ++i) {
    cumulative += d.counts[i];
    ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound =
        i < kDurationBuckets.size() ? kDurationBuckets[i] : std::numeric_limits<double>::infinity();
    h.histogram.bucket.push_back(b);
  }
  return h;
}

MetricFamily histogram(const std::string& name, const std::string& help, const DurationHistogram& d,
                       std::vector<ClientMetric::Label> labels) {
  MetricFamily f = family(name, help, MetricType::Histogram);
  f.metric.push_back(histogramMetric(d, std::move(labels)));
  return f;
}

}  // namespace

std::string renderPrometheus(const WorkerStats& stats, const ControlStats& control,
                             const std::vector<MetricFamilyData>& extra) {
  std::vector<MetricFamily> families;

  auto requests = family("tether_requests_total",
                         "Requests finished, by direction, service, route, status and reason.",
                         MetricType::Counter);
  auto durations =
      family("tether_request_duration_seconds",
             "Time from the request head to the end of the response.", MetricType::Histogram);
  auto grpc = family("tether_grpc_requests_total",
                     "gRPC calls finished, by direction, service, route and grpc-status.",
                     MetricType::Counter);
  for (const auto& [key, rs] : stats.routes) {
    for (const auto& g : rs.grpc) {
      grpc.metric.push_back(
          counter(static_cast<double>(g.count), {{"direction", rs.direction},
                                                 {"grpc_status", std::to_string(g.status)},
                                                 {"route", rs.route},
                                                 {"service", rs.service}}));
    }
    for (const auto& c : rs.codes) {
      requests.metric.push_back(
          counter(static_cast<double>(c.count),
                  {{"code", c.code == 0 ? std::string("other") : std::to_string(c.code)},
                   {"direction", rs.direction},
                   {"reason", std::string(reasonName(c.reason))},
                   {"route", rs.route},
                   {"service", rs.service}}));
    }
    durations.metric.push_back(histogramMetric(
        rs.duration, {{"direction", rs.direction}, {"route", rs.route}, {"service", rs.service}}));
  }
  families.push_back(std::move(requests));
  families.push_back(std::move(grpc));
  families.push_back(std::move(durations));

  auto upstreamRequests = family("tether_upstream_requests_total",
                                 "Requests sent to upstream services.", MetricType::Counter);
  auto connectFailures =
      family("tether_upstream_connect_failures_total",
             "Upstream connections that could not be made.", MetricType::Counter);
  auto resets = family("tether_upstream_resets_total",
                       "Upstream connections that broke during an exchange.", MetricType::Counter);
  auto timeouts = family("tether_upstream_timeouts_total", "Requests that hit the route timeout.",
                         MetricType::Counter);
  auto retries = family("tether_retries_total", "Upstream requests retried.", MetricType::Counter);
  auto budget = family("tether_retry_budget_exhausted_total",
                       "Retries not made because the retry budget was spent.", MetricType::Counter);
  auto ejections = family("tether_outlier_ejections_total",
                          "Endpoints ejected by passive outlier detection.", MetricType::Counter);
  auto panics =
      family("tether_panic_total", "Picks made among all endpoints because too few were healthy.",
             MetricType::Counter);
  auto cxOverflow = family("tether_upstream_connections_overflow_total",
                           "Requests that found the service's limits.maxConnections spent (they "
                           "waited in line for a connection, or got 503 overflow).",
                           MetricType::Counter);
  auto active = family("tether_upstream_requests_active", "Requests in flight to a service.",
                       MetricType::Gauge);
  for (const auto& [name, ss] : stats.services) {
    std::vector<ClientMetric::Label> l = {{"service", name}};
    upstreamRequests.metric.push_back(counter(static_cast<double>(ss.upstreamRequests), l));
    connectFailures.metric.push_back(counter(static_cast<double>(ss.upstreamConnectFailures), l));
    resets.metric.push_back(counter(static_cast<double>(ss.upstreamResets), l));
    timeouts.metric.push_back(counter(static_cast<double>(ss.upstreamTimeouts), l));
    retries.metric.push_back(counter(static_cast<double>(ss.retries), l));
    budget.metric.push_back(counter(static_cast<double>(ss.retryBudgetExhausted), l));
    active.metric.push_back(gauge(static_cast<double>(ss.activeRequests), l));
    ejections.metric.push_back(counter(static_cast<double>(ss.outlierEjections), l));
    panics.metric.push_back(counter(static_cast<double>(ss.panic), l));
    cxOverflow.metric.push_back(counter(static_cast<double>(ss.connectionOverflow), l));
  }
  families.push_back(std::move(upstreamRequests));
  families.push_back(std::move(connectFailures));
  families.push_back(std::move(resets));
  families.push_back(std::move(timeouts));
  families.push_back(std::move(retries));
  families.push_back(std::move(budget));
  families.push_back(std::move(active));
  families.push_back(std::move(ejections));
  families.push_back(std::move(panics));
  families.push_back(std::move(cxOverflow));

  auto pairs = [&](const std::string& name, const std::string& help,
                   const WorkerStats::PairCounts& counts, const char* first, const char* second) {
    auto f = family(name, help, MetricType::Counter);
    for (const auto& [key, value] : counts) {
      size_t sep = key.find('\0');
      std::vector<ClientMetric::Label> labels = {{first, key.substr(0, sep)},
                                                 {second, key.substr(sep + 1)}};
      std::sort(labels.begin(), labels.end());  // alphabetical, like every other family
      f.metric.push_back(counter(static_cast<double>(value), std::move(labels)));
    }
    families.push_back(std::move(f));
  };
  pairs("tether_lane_requests_total", "Requests carrying a canary lane.", stats.laneRequests,
        "direction", "lane");
  pairs("tether_lane_fallback_total",
        "Lane requests sent to the baseline because the service has no endpoint on the lane.",
        stats.laneFallbacks, "service", "lane");
  pairs("tether_downstream_protocol_total",
        "Downstream connections by the protocol detected on their first bytes.", stats.protocols,
        "listener", "protocol");
  pairs("tether_http2_abuse_closed_total",
        "HTTP/2 connections closed with GOAWAY by a protection (flood, reset, CONTINUATION).",
        stats.http2Abuse, "listener", "kind");
  WorkerStats::PairCounts acceptPauses = stats.acceptPauses;
  for (const auto& [k, v] : control.acceptPauses) acceptPauses[k] += v;
  pairs("tether_accept_paused_total",
        "Times a listener stopped accepting for a short back-off, by reason (descriptors or "
        "memory exhausted).",
        acceptPauses, "listener", "reason");
  pairs("tether_auth_requests_total",
        "Requests an HmacAuth rule checked (inbound: ok, or why not) or signed (outbound).",
        stats.auth, "rule", "result");
  pairs("tether_auth_caller_requests_total",
        "Requests an inbound HmacAuth rule authenticated, by caller (signature or certificate).",
        stats.callers, "rule", "caller");

  auto one = [&](const std::string& name, const std::string& help, MetricType type, double value) {
    auto f = family(name, help, type);
    f.metric.push_back(type == MetricType::Counter ? counter(value) : gauge(value));
    families.push_back(std::move(f));
  };
  one("tether_downstream_connections_active", "Open downstream connections.", MetricType::Gauge,
      static_cast<double>(stats.downstreamConnectionsActive));
  one("tether_downstream_connections_total", "Downstream connections accepted.",
      MetricType::Counter, static_cast<double>(stats.downstreamConnectionsTotal));
  one("tether_downstream_connections_overflow_total",
      "Connections refused because a listener was at maxConnections.", MetricType::Counter,
      static_cast<double>(stats.downstreamOverflow));
  one("tether_tcp_connections_total", "Raw TCP (passthrough) connections.", MetricType::Counter,
      static_cast<double>(stats.tcpConnections));
  one("tether_tcp_connect_failures_total", "Raw TCP connections whose upstream connect failed.",
      MetricType::Counter, static_cast<double>(stats.tcpConnectFailures));
  one("tether_tcp_received_bytes_total", "Raw TCP bytes from clients, sent upstream.",
      MetricType::Counter, static_cast<double>(stats.tcpBytesReceived));
  one("tether_tcp_sent_bytes_total", "Raw TCP bytes from upstreams, sent to clients.",
      MetricType::Counter, static_cast<double>(stats.tcpBytesSent));
  families.push_back(
      histogram("tether_protocol_detection_duration_seconds",
                "Time from accept to the protocol decision (first bytes, or the detect timeout).",
                stats.detectDuration, {}));
  one("tether_http2_streams_total", "HTTP/2 streams opened by downstream clients.",
      MetricType::Counter, static_cast<double>(stats.http2Streams));
  one("tether_upstream_connections_active", "Open upstream connections.", MetricType::Gauge,
      static_cast<double>(stats.upstreamConnectionsActive));
  one("tether_upstream_connections_total", "Upstream connections opened.", MetricType::Counter,
      static_cast<double>(stats.upstreamConnectionsTotal));
  one("tether_upstream_connections_reused_total",
      "Requests sent on a pooled keep-alive connection.", MetricType::Counter,
      static_cast<double>(stats.upstreamConnectionsReused));
  one("tether_access_log_lines_total", "Access log lines buffered for writing.",
      MetricType::Counter, static_cast<double>(stats.accessLogLines));
  one("tether_access_log_dropped_total",
      "Access log lines dropped because the disk did not keep up.", MetricType::Counter,
      static_cast<double>(stats.accessLogDropped));
  one("tether_config_version", "Version of the snapshot being served.", MetricType::Gauge,
      static_cast<double>(control.configVersion));
  one("tether_ready", "1 when /ready answers 200.", MetricType::Gauge, control.ready ? 1 : 0);
  if (control.controlPlaneConfigured) {
    one("tether_control_plane_connected",
        "1 while the stream to the control plane is up (the last good rules serve meanwhile).",
        MetricType::Gauge, control.controlPlaneConnected ? 1 : 0);
    auto updates =
        family("tether_control_plane_updates_total",
               "Control-plane pushes answered, by result (ack, nack).", MetricType::Counter);
    for (const char* result : {"ack", "nack"}) {
      auto it = control.controlPlaneUpdates.find(result);
      updates.metric.push_back(
          counter(it == control.controlPlaneUpdates.end() ? 0.0 : static_cast<double>(it->second),
                  {{"result", result}}));
    }
    families.push_back(std::move(updates));
  }
  one("tether_draining", "1 while draining.", MetricType::Gauge, control.draining ? 1 : 0);
  one("tether_workers", "Worker threads.", MetricType::Gauge, control.workers);

  for (const MetricFamilyData& d : extra) {
    auto f = family(d.name, d.help, d.counter ? MetricType::Counter : MetricType::Gauge);
    for (const auto& sample : d.samples) {
      std::vector<ClientMetric::Label> labels;
      for (const auto& [name, value] : sample.labels) labels.push_back({name, value});
      f.metric.push_back(d.counter ? counter(sample.value, std::move(labels))
                                   : gauge(sample.value, std::move(labels)));
    }
    families.push_back(std::move(f));
  }

  auto reloads =
      family("tether_config_reloads_total", "Config reloads, by result.", MetricType::Counter);
  for (const char* result :
       {"applied", "restart_required", "rejected", "unreadable", "unchanged"}) {
    auto it = control.reloads.find(result);
    reloads.metric.push_back(counter(
        it == control.reloads.end() ? 0.0 : static_cast<double>(it->second), {{"result", result}}));
  }
  families.push_back(std::move(reloads));

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace tether::proxy
