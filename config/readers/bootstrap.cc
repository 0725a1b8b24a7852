// The bootstrap (tether.yaml): node, admin, workers, listeners, local app, rule sources,
// drain, protocol limits, upstream defaults, Redis, the access log.

#include "config/loader_internal.h"

namespace tether::config::detail {

namespace {

void readListener(ErrorSink& sink, const YAML::Node& n, const std::string& path,
                  ListenerConfig& out) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  r.required("name");
  r.readString("name", out.name);
  r.required("address");
  r.readAddress("address", out.address);
  int dir = r.readEnum("direction", {"inbound", "outbound"});
  if (dir >= 0) out.direction = dir == 0 ? Direction::kInbound : Direction::kOutbound;
  r.readBool("originalDestination", out.originalDestination);
  if (r.readEnum("unknownDestinations", {"passthrough", "deny"}) == 1) {
    out.unknownDestinations = ListenerConfig::Unknown::kDeny;
  }
  r.readUint("maxConnections", out.maxConnections, 1);
  int proto = r.readEnum("protocol", {"auto", "http1", "http2"});
  if (proto >= 0) out.protocol = static_cast<ListenerProtocol>(proto);
  r.readString("tcpService", out.tcpService);
  r.readDuration("tcpIdleTimeout", out.tcpIdleTimeout);
  if (r.get("detect").IsDefined()) {
    MapReader d(sink, r.get("detect"), r.child("detect"));
    d.readDuration("timeout", out.detect.timeout);
    YAML::Node ports = d.get("skipPorts");
    if (ports.IsDefined()) {
      out.detect.skipPorts.clear();
      if (!ports.IsSequence()) {
        sink.add(ports, d.child("skipPorts"), "expected a list of ports");
      } else {
        for (const auto& p : ports) {
          uint32_t v = 0;
          try {
            v = p.as<uint32_t>();
          } catch (const YAML::Exception&) {
          }
          if (v == 0 || v > 65535) {
            sink.add(p, d.child("skipPorts"), "expected a port (1-65535)");
          } else {
            out.detect.skipPorts.push_back(v);
          }
        }
      }
    }
  }
  if (r.get("tls").IsDefined()) {
    MapReader t(sink, r.get("tls"), r.child("tls"));
    TlsServerConfig tls;
    t.required("certFile");
    t.required("keyFile");
    t.readString("certFile", tls.certFile);
    t.readString("keyFile", tls.keyFile);
    t.readBool("required", tls.required);
    t.readString("caFile", tls.caFile);
    t.readBool("requireClientCert", tls.requireClientCert);
    for (const char* field : {"certFile", "keyFile", "caFile"}) {
      FieldPosition at = t.position(field);
      if (at.line > 0) out.tlsFiles[t.get(field).as<std::string>("")] = at;
    }
    out.tls = tls;
  }
}

void readHttp2Settings(MapReader& parent, Http2Settings& out) {
  MapReader r(parent.sink(), parent.get("http2"), parent.child("http2"));
  r.readUint("maxConcurrentStreams", out.maxConcurrentStreams, 1, 1u << 20);
  r.readUint("initialStreamWindow", out.initialStreamWindow, 65535, (1u << 31) - 1);
  r.readUint("initialConnectionWindow", out.initialConnectionWindow, 65535, (1u << 31) - 1);
  r.readUint("maxContinuations", out.maxContinuations, 0, 10000);
  r.readUint("maxResetBurst", out.maxResetBurst, 1);
  r.readUint("maxResetsPerSecond", out.maxResetsPerSecond, 1);
  r.readUint("maxControlFrameBurst", out.maxControlFrameBurst, 1);
  r.readUint("maxControlFramesPerSecond", out.maxControlFramesPerSecond, 1);
  r.readUint("maxOutboundControlFrames", out.maxOutboundControlFrames, 1);
  r.readUint("maxSettingsEntries", out.maxSettingsEntries, 6, 1000);
}

void readHttpLimits(MapReader& parent, HttpLimits& out) {
  MapReader r(parent.sink(), parent.get("http"), parent.child("http"));
  r.readUint("maxRequestHeadersBytes", out.maxRequestHeadersBytes, 1024, 1024 * 1024);
  r.readUint("maxRequestHeaders", out.maxRequestHeaders, 1, 10000);
  uint32_t bodyMiB = 0;
  r.readUint("maxRequestBodyMiB", bodyMiB, 0, 1024 * 1024);
  out.maxRequestBodyBytes = static_cast<uint64_t>(bodyMiB) << 20;
  r.readDuration("requestHeadersTimeout", out.requestHeadersTimeout);
  r.readDuration("idleTimeout", out.idleTimeout);
  r.readUint("bufferHighWatermark", out.bufferHighWatermark, 4096);
  r.readUint("bufferLowWatermark", out.bufferLowWatermark, 0);
  r.readBool("addXForwardedFor", out.addXForwardedFor);
  r.readBool("addVia", out.addVia);
  if (r.get("pathNormalization").IsDefined()) {
    MapReader p(r.sink(), r.get("pathNormalization"), r.child("pathNormalization"));
    p.readBool("enabled", out.pathNormalization.enabled);
    p.readBool("mergeSlashes", out.pathNormalization.mergeSlashes);
    int escaped = p.readEnum("escapedSlashes", {"reject", "keep", "unescape"});
    if (escaped >= 0) {
      out.pathNormalization.escapedSlashes =
          static_cast<PathNormalization::EscapedSlashes>(escaped);
    }
  }
  int underscores = r.readEnum("headersWithUnderscores", {"drop", "allow", "reject"});
  if (underscores >= 0) {
    out.headersWithUnderscores = static_cast<HttpLimits::Underscores>(underscores);
  }
  if (out.bufferLowWatermark >= out.bufferHighWatermark) {
    r.error("bufferLowWatermark", "must be below bufferHighWatermark");
  }
}

}  // namespace

void readBootstrap(ErrorSink& sink, const YAML::Node& root, Bootstrap& b,
                   std::vector<YAML::Node>& inlineRules) {
  MapReader r(sink, root, "");
  if (!r.ok()) return;
  {
    MapReader n(sink, r.get("node"), "node");
    n.readString("name", b.node.name);
    n.readString("service", b.node.service);
    n.readStringMap("labels", b.node.labels);
    Address a;
    if (n.get("address").IsDefined() && n.readAddress("address", a)) b.node.address = a;
  }
  if (r.get("runAs").IsDefined()) {
    MapReader u(sink, r.get("runAs"), "runAs");
    RunAs runAs;
    u.required("uid");
    u.readUint("uid", runAs.uid, 1);
    runAs.gid = runAs.uid;
    u.readUint("gid", runAs.gid, 1);
    b.runAs = runAs;
  }
  {
    MapReader a(sink, r.get("admin"), "admin");
    a.readAddress("address", b.admin);
  }
  YAML::Node workers = r.get("workers");
  if (workers.IsDefined() && !workers.IsNull()) {
    if (workers.IsScalar() && workers.Scalar() == "auto") {
      b.workers = 0;
    } else {
      r.readUint("workers", b.workers, 1, 256);
    }
  }
  YAML::Node listeners = r.get("listeners");
  if (listeners.IsDefined() && !listeners.IsNull()) {
    if (!listeners.IsSequence()) {
      sink.add(listeners, "listeners", "expected a list");
    } else {
      for (size_t i = 0; i < listeners.size(); ++i) {
        ListenerConfig l;
        readListener(sink, listeners[i], "listeners[" + std::to_string(i) + "]", l);
        for (const auto& other : b.listeners) {
          if (other.name == l.name) {
            sink.add(listeners[i], "listeners[" + std::to_string(i) + "].name",
                     "duplicate listener name \"" + l.name + "\"");
          }
        }
        b.listeners.push_back(l);
      }
    }
  }
  {
    MapReader l(sink, r.get("localApp"), "localApp");
    l.readAddress("address", b.localApp.address);
    MapReader rd(sink, l.get("readiness"), l.child("readiness"));
    std::string path;
    rd.readString("path", path);
    if (!path.empty()) b.localApp.readinessPath = path;
  }
  {
    MapReader rr(sink, r.get("rules"), "rules");
    rr.readStringList("files", b.rules.files);
    rr.readBool("watch", b.rules.watch);
    if (rr.get("controlPlane").IsDefined()) {
      MapReader cp(sink, rr.get("controlPlane"), rr.child("controlPlane"));
      ControlPlaneConfig c;
      cp.required("address");
      cp.readAddress("address", c.address);
      cp.readDuration("initialBackoff", c.initialBackoff);
      cp.readDuration("maxBackoff", c.maxBackoff);
      cp.readString("cacheFile", c.cacheFile);
      b.rules.controlPlane = c;
    }
    YAML::Node inl = rr.get("inline");
    if (inl.IsDefined() && !inl.IsNull()) {
      if (!inl.IsSequence()) {
        sink.add(inl, "rules.inline", "expected a list of rule documents");
      } else {
        for (const auto& doc : inl) inlineRules.push_back(doc);
      }
    }
  }
  {
    MapReader d(sink, r.get("drain"), "drain");
    d.readDuration("timeout", b.drainTimeout);
    d.readDuration("grace", b.drainGrace);
  }
  readHttpLimits(r, b.http);
  readHttp2Settings(r, b.http2);
  {
    MapReader u(sink, r.get("upstream"), "upstream");
    u.readDuration("connectTimeout", b.upstream.connectTimeout);
    u.readUint("maxIdlePerEndpoint", b.upstream.maxIdlePerEndpoint);
    u.readDuration("idleTimeout", b.upstream.idleTimeout);
  }
  {
    MapReader a(sink, r.get("accessLog"), "accessLog");
    a.readString("path", b.accessLog.path);
  }
  {
    MapReader rd(sink, r.get("redis"), "redis");
    if (rd.get("address").IsDefined()) {
      Address addr;
      if (rd.readAddress("address", addr)) b.redis.address = addr;
    }
    rd.readDuration("timeout", b.redis.timeout);
  }
  if (b.node.name.empty()) {
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) == 0) b.node.name = host;
  }
}

}  // namespace tether::config::detail
