// Service: endpoints (static or DNS), protocol, TLS origination, balancing, health checks,
// outlier detection and connection limits.

#include <cstdio>

#include "config/readers/readers.h"

namespace tether::config::detail {

namespace {

void readEndpoint(ErrorSink& sink, const YAML::Node& n, const std::string& path,
                  EndpointConfig& out) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  r.required("address");
  r.readAddress("address", out.address);
  out.addressText = out.address.toString();
  r.readUint("weight", out.weight, 1, 1'000'000);
  r.readStringMap("labels", out.labels);
}

}  // namespace

void readServiceSpec(ErrorSink& sink, MapReader& spec, ServiceConfig& out, RuleSet&) {
  int proto = spec.readEnum("protocol", {"http1", "http2", "auto"});
  if (proto >= 0) out.protocol = static_cast<Protocol>(proto);
  YAML::Node eps = spec.get("endpoints");
  if (eps.IsDefined() && !eps.IsNull()) {
    if (!eps.IsSequence()) {
      spec.error("endpoints", "expected a list");
    } else {
      for (size_t i = 0; i < eps.size(); ++i) {
        EndpointConfig e;
        readEndpoint(sink, eps[i], indexed(spec.child("endpoints"), i), e);
        out.endpoints.push_back(std::move(e));
      }
    }
  }
  std::vector<std::string> addresses;
  spec.readStringList("addresses", addresses);
  for (const auto& text : addresses) {
    if (auto a = parseAddress(text)) {
      out.addresses.push_back(*a);
    } else {
      spec.error("addresses", "invalid address \"" + text + "\" (expected ip:port)");
    }
  }
  std::string dns;
  if (spec.get("dns").IsDefined() && spec.readString("dns", dns)) {
    auto a = parseHostPort(dns);
    if (!a) {
      spec.error("dns", "invalid dns target \"" + dns + "\" (expected name:port)");
    } else {
      out.dns = a;
    }
  }
  if (out.dns && !out.endpoints.empty()) spec.error("dns", "use either endpoints or dns");
  spec.readDuration("dnsRefresh", out.dnsRefresh);
  {
    MapReader lb(sink, spec.get("loadBalancer"), spec.child("loadBalancer"));
    int p =
        lb.readEnum("policy", {"round_robin", "random", "least_request", "ring_hash", "maglev"});
    if (p >= 0) out.loadBalancer.policy = static_cast<LbPolicy>(p);
    lb.readDuration("slowStart", out.loadBalancer.slowStart);
    std::string key;
    if (lb.get("hashKey").IsDefined() && lb.readString("hashKey", key)) {
      HashKey& h = out.loadBalancer.hashKey;
      if (key == "source_ip") {
        h.kind = HashKey::Kind::kSourceIp;
      } else if (key.rfind("header:", 0) == 0 && key.size() > 7) {
        h.kind = HashKey::Kind::kHeader;
        h.name = lower(key.substr(7));
      } else if (key.rfind("cookie:", 0) == 0 && key.size() > 7) {
        h.kind = HashKey::Kind::kCookie;
        h.name = key.substr(7);
      } else {
        lb.error("hashKey", "invalid hashKey \"" + key +
                                "\" (expected header:<name>, cookie:<name> or source_ip)");
      }
    }
    bool hashing = out.loadBalancer.policy == LbPolicy::kRingHash ||
                   out.loadBalancer.policy == LbPolicy::kMaglev;
    if (hashing && out.loadBalancer.hashKey.kind == HashKey::Kind::kNone &&
        lb.get("policy").IsDefined()) {
      lb.error("policy", "ring_hash and maglev need a hashKey");
    }
  }
  YAML::Node hc = spec.get("healthCheck");
  if (hc.IsDefined() && !hc.IsNull()) {
    MapReader h(sink, hc, spec.child("healthCheck"));
    HealthCheckConfig c;
    h.readString("path", c.path);
    h.readString("host", c.host);
    h.readString("grpcService", c.grpcService);
    int type = h.readEnum("type", {"tcp", "http", "grpc"});
    c.type = type >= 0        ? static_cast<HealthCheckType>(type)
             : c.path.empty() ? HealthCheckType::kTcp
                              : HealthCheckType::kHttp;
    if (c.type == HealthCheckType::kHttp && c.path.empty()) {
      h.error("type", "an http health check needs a path");
    }
    if (c.type != HealthCheckType::kHttp && !c.path.empty()) {
      h.error("path", "path is for http health checks only");
    }
    if (c.type != HealthCheckType::kGrpc && h.get("grpcService").IsDefined()) {
      h.error("grpcService", "grpcService is for grpc health checks only");
    }
    // A status (200), a range ("200-299"), or a list of either (as Envoy's expected_statuses).
    YAML::Node ex = h.get("expectedStatus");
    if (ex.IsDefined()) {
      std::vector<YAML::Node> items;
      if (ex.IsSequence()) {
        for (const auto& n : ex) items.push_back(n);
      } else {
        items.push_back(ex);
      }
      for (const auto& n : items) {
        std::string text = n.IsScalar() ? n.Scalar() : "";
        int lo = 0, hi = 0;
        char dash = 0;
        int read = std::sscanf(text.c_str(), "%d%c%d", &lo, &dash, &hi);
        if (read == 1) hi = lo;
        bool ok = (read == 1 || (read == 3 && dash == '-')) && lo >= 100 && hi <= 599 && lo <= hi &&
                  text.find_first_not_of("0123456789-") == std::string::npos;
        if (!ok) {
          sink.add(n, h.child("expectedStatus"),
                   "expected a status (100-599), a range such as \"200-299\", or a list of them");
          continue;
        }
        c.expectedStatuses.emplace_back(lo, hi);
      }
    }
    h.readDuration("interval", c.interval);
    h.readDuration("timeout", c.timeout);
    h.readUint("unhealthyThreshold", c.unhealthyThreshold, 1, 100);
    h.readUint("healthyThreshold", c.healthyThreshold, 1, 100);
    out.healthCheck = c;
  }
  YAML::Node od = spec.get("outlierDetection");
  if (od.IsDefined() && !od.IsNull()) {
    MapReader o(sink, od, spec.child("outlierDetection"));
    OutlierDetectionConfig c;
    o.readUint("consecutiveErrors", c.consecutiveErrors, 1, 1000);
    o.readDuration("baseEjectionTime", c.baseEjectionTime);
    o.readUint("maxEjectionPercent", c.maxEjectionPercent, 0, 100);
    out.outlierDetection = c;
  }
  {
    MapReader l(sink, spec.get("limits"), spec.child("limits"));
    l.readUint("maxConnections", out.limits.maxConnections, 1);
    l.readUint("maxPendingRequests", out.limits.maxPendingRequests, 0);
    l.readUint("maxRequests", out.limits.maxRequests, 1);
    l.readUint("maxRetries", out.limits.maxRetries, 0);
  }
  Duration d{};
  if (spec.get("tls").IsDefined()) {
    MapReader t(sink, spec.get("tls"), spec.child("tls"));
    TlsClientConfig tls;
    t.required("caFile");
    t.readString("sni", tls.sni);
    t.readString("caFile", tls.caFile);
    t.readString("certFile", tls.certFile);
    t.readString("keyFile", tls.keyFile);
    if (tls.certFile.empty() != tls.keyFile.empty()) {
      t.error(tls.certFile.empty() ? "certFile" : "keyFile",
              "certFile and keyFile go together (a client certificate needs its key)");
    }
    tls.id = tls.sni + "\n" + tls.caFile + "\n" + tls.certFile + "\n" + tls.keyFile;
    for (const char* field : {"caFile", "certFile", "keyFile"}) {
      FieldPosition at = t.position(field);
      if (at.line > 0) out.tlsFiles[t.get(field).as<std::string>("")] = at;
    }
    out.tls = tls;
  }
  if (spec.get("connectTimeout").IsDefined() && spec.readDuration("connectTimeout", d)) {
    out.connectTimeout = d;
  }
  // gRPC is HTTP/2 only: plaintext auto is HTTP/1.1, and auto over TLS is checked when
  // ALPN has answered.
  if (out.healthCheck && out.healthCheck->type == HealthCheckType::kGrpc &&
      (out.protocol == Protocol::kHttp1 || (out.protocol == Protocol::kAuto && !out.tls))) {
    sink.add(hc, spec.child("healthCheck"),
             "a grpc health check needs protocol: http2 (or auto with tls)");
  }
}

}  // namespace tether::config::detail
