#include <glob.h>
// SHA256_Init and co. are deprecated in OpenSSL 3 but still supported.
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "config/loader_internal.h"
#include "config/yaml_guard.h"
#include "config/yaml_reader.h"

namespace tether::config {

const char* toString(Direction d) { return d == Direction::kInbound ? "inbound" : "outbound"; }

const ServiceConfig* Config::findService(const std::string& name) const {
  auto it = services.find(name);
  return it == services.end() ? nullptr : &it->second;
}

std::string sha256Hex(std::string_view data) {
  // The low-level API: EVP would initialize OpenSSL's providers and configuration, which a
  // Tether without TLS never needs (3 MB of libcrypto paged in at start).
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, data.data(), data.size());
  SHA256_Final(digest, &c);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(digest));
  for (unsigned i = 0; i < sizeof(digest); ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

namespace detail {

void ErrorSink::add(const YAML::Node& at, const std::string& path, const std::string& message) {
  if (at.IsDefined()) {
    YAML::Mark m = at.Mark();
    addAt(m.line + 1, m.column + 1, path, message);
  } else {
    addAt(0, 0, path, message);
  }
}

void ErrorSink::addAt(int line, int column, const std::string& path, const std::string& message) {
  errors_.push_back(ConfigError{file_, line, column, path, message});
}

MapReader::MapReader(ErrorSink& sink, const YAML::Node& node, std::string path)
    : sink_(sink),
      node_(node.IsDefined() ? node : YAML::Node(YAML::NodeType::Undefined)),
      path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    sink_.add(node_, path_, "expected a mapping");
    ok_ = false;
  }
}

MapReader::~MapReader() {
  if (!ok_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    std::string key = kv.first.Scalar();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string msg = "unknown key \"" + key + "\"";
    std::string hint = didYouMean(key, known_);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
    sink_.add(kv.first, path_, msg);
  }
}

std::string MapReader::child(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

FieldPosition MapReader::position(const std::string& key) {
  FieldPosition p{sink_.file(), 0, 0, child(key)};
  YAML::Node v = get(key);
  if (v.IsDefined()) {
    p.line = v.Mark().line + 1;
    p.column = v.Mark().column + 1;
  }
  return p;
}

YAML::Node MapReader::get(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
  if (!ok_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  // operator[] on a const node never inserts.
  const YAML::Node& cn = node_;
  YAML::Node v = cn[key];
  // A missing key yields an "invalid" node that throws on most calls; hand out a plain
  // undefined node instead so callers only ever test IsDefined().
  if (!v.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return v;
}

void MapReader::error(const std::string& key, const std::string& message) {
  YAML::Node v = get(key);
  sink_.add(v.IsDefined() ? v : node_, child(key), message);
}

void MapReader::required(const std::string& key) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) sink_.add(node_, child(key), "is required");
}

bool asString(ErrorSink& sink, const YAML::Node& n, const std::string& path, std::string& out) {
  if (!n.IsScalar()) {
    sink.add(n, path, "expected a string");
    return false;
  }
  out = n.Scalar();
  return true;
}

bool asDuration(ErrorSink& sink, const YAML::Node& n, const std::string& path, Duration& out) {
  std::string text;
  if (!asString(sink, n, path, text)) return false;
  auto d = parseDuration(text);
  if (!d) {
    sink.add(n, path, "invalid duration \"" + text + "\" (use e.g. 300ms, 10s, 1m)");
    return false;
  }
  out = *d;
  return true;
}

bool MapReader::readString(const std::string& key, std::string& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  return asString(sink_, v, child(key), out);
}

bool MapReader::readBool(const std::string& key, bool& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  const std::string& s = v.IsScalar() ? v.Scalar() : std::string();
  if (s == "true") {
    out = true;
  } else if (s == "false") {
    out = false;
  } else {
    sink_.add(v, child(key), "expected true or false");
    return false;
  }
  return true;
}

bool MapReader::readUint(const std::string& key, uint32_t& out, uint32_t min, uint32_t max) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  std::string s = v.IsScalar() ? v.Scalar() : std::string();
  bool digits = !s.empty() && s.size() <= 10 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  uint64_t n = digits ? std::stoull(s) : 0;
  if (!digits || n < min || n > max) {
    sink_.add(v, child(key),
              "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return false;
  }
  out = static_cast<uint32_t>(n);
  return true;
}

bool MapReader::readDuration(const std::string& key, Duration& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  return asDuration(sink_, v, child(key), out);
}

bool MapReader::readAddress(const std::string& key, Address& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  std::string s;
  if (!asString(sink_, v, child(key), s)) return false;
  auto a = parseAddress(s);
  if (!a) {
    sink_.add(v, child(key), "invalid address \"" + s + "\" (expected ip:port)");
    return false;
  }
  out = *a;
  return true;
}

bool MapReader::readStringList(const std::string& key, std::vector<std::string>& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  if (!v.IsSequence()) {
    sink_.add(v, child(key), "expected a list");
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string s;
    if (asString(sink_, v[i], child(key) + "[" + std::to_string(i) + "]", s)) {
      out.push_back(s);
    } else {
      ok = false;
    }
  }
  return ok;
}

bool MapReader::readStringMap(const std::string& key, std::map<std::string, std::string>& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  if (!v.IsMap()) {
    sink_.add(v, child(key), "expected a mapping");
    return false;
  }
  bool ok = true;
  for (const auto& kv : v) {
    std::string s;
    if (asString(sink_, kv.second, child(key) + "." + kv.first.Scalar(), s)) {
      out[kv.first.Scalar()] = s;
    } else {
      ok = false;
    }
  }
  return ok;
}

int MapReader::readEnum(const std::string& key, std::initializer_list<const char*> choices) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return -1;
  std::string s;
  if (!asString(sink_, v, child(key), s)) return -1;
  int i = 0;
  std::string list;
  for (const char* c : choices) {
    if (s == c) return i;
    list += (i ? " | " : "") + std::string(c);
    ++i;
  }
  sink_.add(v, child(key), "invalid value \"" + s + "\" (expected " + list + ")");
  return -1;
}

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

}  // namespace detail

namespace {

std::string tooLarge(size_t bytes) {
  return "the configuration is " + std::to_string(bytes) + " bytes; the limit is " +
         std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB";
}

}  // namespace

bool readFile(const std::string& path, std::string& out, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    int err = errno;
    ::close(fd);
    return fail(S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(err));
  }
  if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) > kMaxConfigBytes) {
    ::close(fd);
    return fail(tooLarge(static_cast<size_t>(st.st_size)));
  }
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return fail(std::strerror(err));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > kMaxConfigBytes) {  // grew while read
      ::close(fd);
      return fail(tooLarge(content.size()));
    }
  }
  ::close(fd);
  out = std::move(content);
  return true;
}

ConfigError unreadable(const std::string& path, const std::string& why) {
  return ConfigError{path, 0, 0, "", "cannot read file: " + why};
}

std::vector<std::string> expandGlob(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  }
  globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

LoadResult loadFromSources(const Source& bootstrapSource, const std::vector<Source>& ruleSources,
                           bool expandRuleFiles) {
  LoadResult result;
  auto cfg = std::make_shared<Config>();
  detail::RuleSet rules;
  {
    detail::ErrorSink sink(bootstrapSource.name, result.errors);
    std::vector<YAML::Node> inlineRules;
    if (bootstrapSource.content.size() > kMaxConfigBytes) {
      sink.addAt(0, 0, "", tooLarge(bootstrapSource.content.size()));
      return result;
    }
    // A bootstrap the guard refuses is not loaded; the rule files named on the command line
    // are still checked, so one run reports everything.
    if (checkYaml(bootstrapSource.name, bootstrapSource.content, result.errors)) {
      try {
        YAML::Node root = YAML::Load(bootstrapSource.content);
        if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
        detail::readBootstrap(sink, root, cfg->bootstrap, inlineRules);
        for (const auto& doc : inlineRules) detail::readRuleDocument(sink, doc, rules);
      } catch (const YAML::Exception& e) {
        sink.addAt(e.mark.line + 1, e.mark.column + 1, "", e.msg);
      }
    }
  }
  std::vector<Source> sources = ruleSources;
  if (expandRuleFiles) {
    for (const auto& pattern : cfg->bootstrap.rules.files) {
      for (const auto& file : expandGlob(pattern)) {
        Source s{file, {}};
        std::string why;
        if (!readFile(file, s.content, &why)) {
          result.errors.push_back(unreadable(file, why));
          result.unreadable = true;
          continue;
        }
        sources.push_back(std::move(s));
      }
    }
  }
  size_t total = bootstrapSource.content.size();
  for (const auto& src : sources) total += src.content.size();
  if (total > kMaxConfigBytes) {
    // Refused before parsing: every byte would become nodes, documents and copies.
    result.errors.push_back(ConfigError{
        bootstrapSource.name, 0, 0, "",
        tooLarge(total) + " (bootstrap and " + std::to_string(sources.size()) + " rule sources)"});
    return result;
  }
  for (const auto& src : sources) {
    if (checkYaml(src.name, src.content, result.errors)) {
      detail::readRuleSource(src, rules, result.errors);
    }
  }
  detail::finishConfig(*cfg, rules, result.errors);
  std::string all = bootstrapSource.content;
  for (const auto& d : cfg->documents) all += d.hash;
  cfg->hash = sha256Hex(all);
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

LoadResult loadFromFiles(const std::string& bootstrapPath,
                         const std::vector<std::string>& extraRuleFiles,
                         const std::vector<Source>& extraSources) {
  Source bootstrap{bootstrapPath, {}};
  std::string why;
  if (!readFile(bootstrapPath, bootstrap.content, &why)) {
    LoadResult r;
    r.errors.push_back(unreadable(bootstrapPath, why));
    r.unreadable = true;
    return r;
  }
  std::vector<Source> rules;
  ConfigErrors readErrors;
  for (const auto& f : extraRuleFiles) {
    Source s{f, {}};
    if (!readFile(f, s.content, &why)) {
      readErrors.push_back(unreadable(f, why));
      continue;
    }
    rules.push_back(std::move(s));
  }
  rules.insert(rules.end(), extraSources.begin(), extraSources.end());
  LoadResult r = loadFromSources(bootstrap, rules, true);
  if (!readErrors.empty()) {
    r.errors.insert(r.errors.begin(), readErrors.begin(), readErrors.end());
    r.config.reset();
    r.unreadable = true;
  }
  return r;
}

LoadResult loadEmbeddedDefault() {
  return loadFromSources(Source{"<embedded default>", embeddedDefaultYaml()}, {}, true);
}

}  // namespace tether::config
