// Rule documents: Service, Route, TrafficLabel, RateLimit, CircuitBreaker.

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "config/loader_internal.h"

namespace tether::config {

bool StringMatch::matches(std::optional<std::string_view> candidate) const {
  if (kind == StringMatchKind::kPresent) return candidate.has_value();
  if (!candidate) return false;
  switch (kind) {
    case StringMatchKind::kExact:
      return *candidate == value;
    case StringMatchKind::kPrefix:
      return candidate->substr(0, value.size()) == value;
    case StringMatchKind::kRegex:
      return regex->fullMatch(*candidate);
    case StringMatchKind::kPresent:
      break;
  }
  return true;
}

namespace detail {
namespace {

constexpr const char* kApiVersion = "tether.dev/v1alpha1";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Origin originOf(ErrorSink& sink, const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  return Origin{sink.file(), m.line + 1, m.column + 1};
}

std::shared_ptr<const Regex> compileRegex(ErrorSink& sink, const YAML::Node& at,
                                          const std::string& path, const std::string& re) {
  std::string error;
  auto compiled = Regex::compile(re, error);
  if (!compiled) sink.add(at, path, "invalid regex \"" + re + "\" (RE2 syntax): " + error);
  return compiled;
}

void readStringMatch(ErrorSink& sink, const YAML::Node& n, const std::string& path,
                     StringMatch& out) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  int set = 0;
  if (r.get("exact").IsDefined()) {
    r.readString("exact", out.value);
    out.kind = StringMatchKind::kExact;
    ++set;
  }
  if (r.get("prefix").IsDefined()) {
    r.readString("prefix", out.value);
    out.kind = StringMatchKind::kPrefix;
    ++set;
  }
  if (r.get("regex").IsDefined()) {
    r.readString("regex", out.value);
    out.kind = StringMatchKind::kRegex;
    out.regex = compileRegex(sink, r.get("regex"), r.child("regex"), out.value);
    ++set;
  }
  if (r.get("present").IsDefined()) {
    bool present = true;
    r.readBool("present", present);
    if (!present) r.error("present", "only \"present: true\" is supported");
    out.kind = StringMatchKind::kPresent;
    ++set;
  }
  if (set != 1) sink.add(n, path, "expected exactly one of exact, prefix, regex, present");
}

void readMatchMap(MapReader& r, const std::string& key,
                  std::vector<std::pair<std::string, StringMatch>>& out, bool lowerNames) {
  YAML::Node m = r.get(key);
  if (!m.IsDefined() || m.IsNull()) return;
  if (!m.IsMap()) {
    r.sink().add(m, r.child(key), "expected a mapping of name to match");
    return;
  }
  for (const auto& kv : m) {
    std::string name = kv.first.Scalar();
    StringMatch sm;
    readStringMatch(r.sink(), kv.second, r.child(key) + "." + name, sm);
    out.emplace_back(lowerNames ? lower(name) : name, std::move(sm));
  }
}

}  // namespace

bool readPercentage(MapReader& r, std::optional<double>& out, const std::string& key) {
  YAML::Node v = r.get(key);
  if (!v.IsDefined()) return true;
  std::string s;
  if (!asString(r.sink(), v, r.child(key), s)) return false;
  if (!s.empty() && s.back() == '%') s.pop_back();  // "10%" and 10 mean the same
  char* end = nullptr;
  double p = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || p < 0 || p > 100) {
    r.sink().add(v, r.child(key), "expected a number from 0 to 100");
    return false;
  }
  out = p;
  return true;
}

namespace {

/// A plain number within [min, max].
bool readNumber(MapReader& r, const std::string& key, double& out, double min, double max) {
  YAML::Node v = r.get(key);
  if (!v.IsDefined()) return true;
  std::string s;
  if (!asString(r.sink(), v, r.child(key), s)) return false;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || d < min || d > max) {
    std::ostringstream msg;
    msg << "expected a number from " << min << " to " << max;
    r.sink().add(v, r.child(key), msg.str());
    return false;
  }
  out = d;
  return true;
}

void readRuleTarget(ErrorSink& sink, MapReader& spec, RuleTarget& out) {
  YAML::Node n = spec.get("target");
  if (!n.IsDefined() || n.IsNull()) return;
  MapReader t(sink, n, spec.child("target"));
  int dir = t.readEnum("direction", {"inbound", "outbound"});
  if (dir >= 0) out.direction = dir == 0 ? Direction::kInbound : Direction::kOutbound;
  t.readString("service", out.service);
  t.readString("route", out.route);
  t.readString("pathPrefix", out.pathPrefix);
}

void readFallback(ErrorSink& sink, MapReader& spec, FallbackReply& out) {
  YAML::Node n = spec.get("fallback");
  if (!n.IsDefined() || n.IsNull()) return;
  MapReader f(sink, n, spec.child("fallback"));
  uint32_t status = 0;
  if (f.get("status").IsDefined() && f.readUint("status", status, 100, 599)) {
    out.status = static_cast<int>(status);
  }
  f.readString("body", out.body);
  f.readStringMap("headers", out.headers);
}

/// `key: none | caller | source_ip | header:<name>`.
void readLimitKey(MapReader& spec, RateLimitKey& out) {
  std::string key = "none";
  if (!spec.readString("key", key)) return;
  if (key == "none") {
    out.kind = RateLimitKey::Kind::kNone;
  } else if (key == "caller") {
    out.kind = RateLimitKey::Kind::kCaller;
  } else if (key == "source_ip") {
    out.kind = RateLimitKey::Kind::kSourceIp;
  } else if (key.rfind("header:", 0) == 0 && key.size() > 7) {
    out.kind = RateLimitKey::Kind::kHeader;
    out.header = lower(key.substr(7));
  } else {
    spec.error("key",
               "invalid key \"" + key + "\" (expected none, caller, source_ip or header:<name>)");
  }
}

void readConcurrencyLimitSpec(ErrorSink& sink, MapReader& spec, ConcurrencyLimitConfig& out) {
  readRuleTarget(sink, spec, out.target);
  spec.required("maxConcurrency");
  spec.readUint("maxConcurrency", out.maxConcurrency, 1, 10'000'000);
  readLimitKey(spec, out.key);
  spec.readUint("maxKeys", out.maxKeys, 1, 10'000'000);
  readFallback(sink, spec, out.fallback);
}

void readRateLimitSpec(ErrorSink& sink, MapReader& spec, RateLimitConfig& out) {
  readRuleTarget(sink, spec, out.target);
  int alg = spec.readEnum("algorithm",
                          {"token_bucket", "sliding_window", "fixed_window", "leaky_bucket"});
  if (alg >= 0) out.algorithm = static_cast<RateLimitAlgorithm>(alg);
  spec.required("limit");
  spec.readUint("limit", out.limit, 1, 100'000'000);
  spec.readDuration("per", out.per);
  if (out.per.count() <= 0) spec.error("per", "must be longer than 0s");
  spec.readUint("burst", out.burst, 0, 100'000'000);
  if (out.burst == 0) out.burst = out.limit;
  spec.readUint("maxKeys", out.maxKeys, 1, 10'000'000);
  std::string key = "none";
  if (spec.readString("key", key)) {
    if (key == "none") {
      out.key.kind = RateLimitKey::Kind::kNone;
    } else if (key == "caller") {
      out.key.kind = RateLimitKey::Kind::kCaller;
    } else if (key == "source_ip") {
      out.key.kind = RateLimitKey::Kind::kSourceIp;
    } else if (key.rfind("header:", 0) == 0 && key.size() > 7) {
      out.key.kind = RateLimitKey::Kind::kHeader;
      out.key.header = lower(key.substr(7));
    } else {
      spec.error("key",
                 "invalid key \"" + key + "\" (expected none, caller, source_ip or header:<name>)");
    }
  }
  int mode = spec.readEnum("mode", {"local", "global"});
  out.global = mode == 1;
  out.localFallbackLimit = out.limit;
  spec.readUint("localFallbackLimit", out.localFallbackLimit, 1, 100'000'000);
  // Read whatever the algorithm (docs/design.md's token_bucket example carries it); only a
  // leaky bucket uses it.
  spec.readDuration("maxQueueTime", out.maxQueueTime);
  if (out.algorithm == RateLimitAlgorithm::kSlidingWindow && out.limit > 1'000'000) {
    spec.error("limit", "sliding_window remembers every admission of the period: at most 1000000");
  }
  readFallback(sink, spec, out.fallback);
}

void readAuthzRules(ErrorSink& sink, MapReader& spec, const std::string& key,
                    std::vector<AuthzRule>& out) {
  YAML::Node list = spec.get(key);
  if (!list.IsDefined() || list.IsNull()) return;
  if (!list.IsSequence()) {
    spec.error(key, "must be a list of { caller, pathPrefix, methods }");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    MapReader r(sink, list[i], spec.child(key) + "[" + std::to_string(i) + "]");
    if (!r.ok()) continue;
    AuthzRule rule;
    r.readString("caller", rule.caller);
    r.readString("pathPrefix", rule.pathPrefix);
    r.readStringList("methods", rule.methods);
    for (auto& m : rule.methods) {
      std::transform(m.begin(), m.end(), m.begin(),
                     [](unsigned char c) { return std::toupper(c); });
    }
    out.push_back(std::move(rule));
  }
}

void readHmacAuthSpec(ErrorSink& sink, MapReader& spec, HmacAuthConfig& out) {
  int dir = spec.readEnum("direction", {"inbound", "outbound"});
  if (dir >= 0) out.direction = static_cast<Direction>(dir);
  readRuleTarget(sink, spec, out.target);
  out.target.direction = out.direction;
  if (!spec.get("peers").IsDefined()) spec.required("keys");
  YAML::Node keys = spec.get("keys");
  if (keys.IsDefined() && !keys.IsSequence()) spec.error("keys", "must be a list of keys");
  if (keys.IsSequence()) {
    if (keys.size() == 0 && !spec.get("peers").IsDefined()) {
      spec.error("keys", "needs at least one key");
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      MapReader k(sink, keys[i], spec.child("keys") + "[" + std::to_string(i) + "]");
      if (!k.ok()) continue;
      HmacKeyConfig key;
      k.required("id");
      k.required("secretFile");
      k.readString("id", key.id);
      k.readString("caller", key.caller);
      k.readString("secretFile", key.secretFile);
      key.secretAt = k.position("secretFile");
      if (key.id.empty() || key.id.find_first_of(" ,=\"") != std::string::npos) {
        k.error("id", "must be non-empty, without spaces, commas, '=' or quotes");
      }
      if (out.direction == Direction::kInbound && key.caller.empty()) k.required("caller");
      for (const auto& other : out.keys) {
        if (other.id == key.id) k.error("id", "duplicate key id \"" + key.id + "\"");
      }
      out.keys.push_back(std::move(key));
    }
  }
  YAML::Node peers = spec.get("peers");
  if (peers.IsDefined() && !peers.IsSequence()) spec.error("peers", "must be a list");
  if (peers.IsSequence()) {
    for (size_t i = 0; i < peers.size(); ++i) {
      MapReader p(sink, peers[i], spec.child("peers") + "[" + std::to_string(i) + "]");
      if (!p.ok()) continue;
      HmacAuthConfig::Peer peer;
      p.required("identity");
      p.required("caller");
      p.readString("identity", peer.identity);
      p.readString("caller", peer.caller);
      out.peers.push_back(std::move(peer));
    }
    if (out.direction == Direction::kOutbound && !out.peers.empty()) {
      spec.error("peers", "peer identities apply to direction: inbound");
    }
  }
  if (spec.get("keyId").IsDefined() && spec.readString("keyId", out.keyId)) {
    bool found = false;
    for (const auto& k : out.keys) found = found || k.id == out.keyId;
    if (!found) spec.error("keyId", "no key with id \"" + out.keyId + "\" in keys");
  }
  spec.readDuration("clockSkew", out.clockSkew);
  if (out.clockSkew.count() < 1000) spec.error("clockSkew", "must be at least 1s");
  spec.readStringList("signedHeaders", out.signedHeaders);
  for (auto& h : out.signedHeaders) h = lower(h);
  spec.readUint("maxBodyBytes", out.maxBodyBytes, 0, 64 * 1024 * 1024);
  spec.readBool("allowUnsignedPayload", out.allowUnsignedPayload);
  spec.readBool("forwardCredentials", out.forwardCredentials);
  spec.readUint("nonceCacheSize", out.nonceCacheSize, 16, 100'000'000);
  readAuthzRules(sink, spec, "allow", out.allow);
  readAuthzRules(sink, spec, "deny", out.deny);
  if (out.direction == Direction::kOutbound && (!out.allow.empty() || !out.deny.empty())) {
    spec.error(out.allow.empty() ? "deny" : "allow", "authorization applies to direction: inbound");
  }
}

void readCircuitBreakerSpec(ErrorSink& sink, MapReader& spec, CircuitBreakerConfig& out) {
  readRuleTarget(sink, spec, out.target);
  int st = spec.readEnum("strategy", {"error_ratio", "slow_ratio", "error_count"});
  if (st >= 0) out.strategy = static_cast<BreakerStrategy>(st);
  if (out.strategy == BreakerStrategy::kErrorCount) {
    out.threshold = 10;
    readNumber(spec, "threshold", out.threshold, 1, 1e9);
  } else {
    readNumber(spec, "threshold", out.threshold, 0.0001, 1);
  }
  spec.readDuration("slowCallThreshold", out.slowCallThreshold);
  spec.readDuration("window", out.window);
  if (out.window.count() < 100) spec.error("window", "must be at least 100ms");
  spec.readUint("minRequests", out.minRequests, 1, 1'000'000);
  spec.readDuration("openDuration", out.openDuration);
  spec.readDuration("maxOpenDuration", out.maxOpenDuration);
  if (out.maxOpenDuration < out.openDuration) out.maxOpenDuration = out.openDuration;
  spec.readUint("halfOpenProbes", out.halfOpenProbes, 1, 10'000);
  spec.readBool("perEndpoint", out.perEndpoint);
  YAML::Node rec = spec.get("recovery");
  if (rec.IsDefined() && !rec.IsNull()) {
    MapReader r(sink, rec, spec.child("recovery"));
    std::optional<double> step;
    readPercentage(r, step, "step");
    if (step) {
      if (*step <= 0) r.error("step", "must be more than 0%");
      out.recoveryStep = *step / 100;
    }
    r.readDuration("interval", out.recoveryInterval);
  }
  YAML::Node failures = spec.get("failureStatuses");
  if (failures.IsDefined()) {
    std::vector<std::string> items;
    spec.readStringList("failureStatuses", items);
    for (const auto& i : items) {
      int code = std::atoi(i.c_str());
      if (code < 100 || code > 599) {
        spec.error("failureStatuses", "\"" + i + "\" is not an HTTP status");
      } else {
        out.failureStatuses.push_back(code);
      }
    }
  }
  YAML::Node grpc = spec.get("failureGrpcStatuses");
  if (grpc.IsDefined()) {
    std::vector<std::string> items;
    spec.readStringList("failureGrpcStatuses", items);
    for (const auto& i : items) {
      int code = std::atoi(i.c_str());
      if (code < 1 || code > 16 || std::to_string(code) != i) {
        spec.error("failureGrpcStatuses", "\"" + i + "\" is not a gRPC status code (1-16)");
      } else {
        out.failureGrpcStatuses.push_back(code);
      }
    }
  }
  readFallback(sink, spec, out.fallback);
}

/// Reads a match block. `percentage` is accepted only where the caller passes somewhere
/// to put it (TrafficLabel), so a Route with one is told the key is unknown.
void readRouteMatch(ErrorSink& sink, const YAML::Node& n, const std::string& path, RouteMatch& out,
                    std::optional<double>* percentage = nullptr) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  if (percentage) readPercentage(r, *percentage);
  std::string s;
  if (r.get("path").IsDefined() && r.readString("path", s)) out.path = s;
  if (r.get("pathPrefix").IsDefined() && r.readString("pathPrefix", s)) out.pathPrefix = s;
  if (r.get("pathRegex").IsDefined() && r.readString("pathRegex", s)) {
    out.pathRegexText = s;
    out.pathRegex = compileRegex(sink, r.get("pathRegex"), r.child("pathRegex"), s);
  }
  if (int(out.path.has_value()) + int(out.pathPrefix.has_value()) +
          int(out.pathRegexText.has_value()) >
      1) {
    sink.add(n, path, "use only one of path, pathPrefix, pathRegex");
  }
  YAML::Node methods = r.get("methods");
  if (methods.IsDefined()) {
    r.readStringList("methods", out.methods);
  }
  YAML::Node method = r.get("method");
  if (method.IsDefined() && r.readString("method", s)) out.methods.push_back(s);
  for (auto& m : out.methods) {
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
  }
  readMatchMap(r, "headers", out.headers, true);
  readMatchMap(r, "queryParams", out.queryParams, false);
  readMatchMap(r, "cookies", out.cookies, false);
}

void readTrafficLabelSpec(ErrorSink& sink, MapReader& spec, TrafficLabelConfig& out) {
  YAML::Node match = spec.get("match");
  if (match.IsDefined() && !match.IsNull()) {
    out.hasMatch = true;
    readRouteMatch(sink, match, spec.child("match"), out.match, &out.percentage);
  }
  std::optional<double> topLevel;
  readPercentage(spec, topLevel);
  if (topLevel) {
    if (out.percentage) spec.error("percentage", "percentage is already set under match");
    out.percentage = topLevel;
  }
  spec.required("label");
  if (spec.readString("label", out.label) && !out.label.empty()) {
    bool ok = out.label.size() <= 63;
    for (char c : out.label) {
      ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    }
    if (!ok) spec.error("label", "a label is 1-63 of [A-Za-z0-9._-]");
  }
  int fb = spec.readEnum("fallback", {"unlabelled", "none"});
  if (fb == 1) out.fallback = TrafficLabelConfig::Fallback::kNone;
  if (!out.hasMatch && !out.percentage) {
    spec.error("match", "a TrafficLabel needs a match, a percentage, or both");
  }
}

void readBackend(ErrorSink& sink, const YAML::Node& n, const std::string& path, BackendConfig& out,
                 RuleSet& rules) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  r.required("service");
  r.readString("service", out.service);
  r.readStringMap("subset", out.subset);
  r.readUint("weight", out.weight, 0, 1'000'000);
  if (!out.service.empty()) {
    rules.serviceRefs.push_back(
        {out.service, originOf(sink, r.get("service")), r.child("service"), sink.file()});
  }
}

void readRouteRule(ErrorSink& sink, const YAML::Node& n, const std::string& path, RouteRule& out,
                   RuleSet& rules) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  readRouteMatch(sink, r.get("match"), r.child("match"), out.match);
  YAML::Node backends = r.get("backends");
  if (!backends.IsDefined() || !backends.IsSequence() || backends.size() == 0) {
    sink.add(backends.IsDefined() ? backends : n, r.child("backends"),
             "expected a non-empty list of backends");
  } else {
    for (size_t i = 0; i < backends.size(); ++i) {
      BackendConfig b;
      readBackend(sink, backends[i], indexed(r.child("backends"), i), b, rules);
      out.totalWeight += b.weight;
      out.backends.push_back(std::move(b));
    }
    if (out.totalWeight == 0) sink.add(backends, r.child("backends"), "weights sum to zero");
  }
  Duration d{};
  if (r.get("timeout").IsDefined() && r.readDuration("timeout", d)) out.timeout = d;
  YAML::Node retry = r.get("retry");
  if (retry.IsDefined() && !retry.IsNull()) {
    MapReader rr(sink, retry, r.child("retry"));
    RetryPolicy p;
    rr.readUint("attempts", p.attempts, 0, 10);
    if (rr.get("perTryTimeout").IsDefined() && rr.readDuration("perTryTimeout", d)) {
      p.perTryTimeout = d;
    }
    rr.readStringList("retryOn", p.retryOn);
    static const std::vector<std::string> kRetryOn = {"connect-failure",
                                                      "refused-stream",
                                                      "reset",
                                                      "5xx",
                                                      "gateway-error",
                                                      "cancelled",
                                                      "deadline-exceeded",
                                                      "unavailable",
                                                      "resource-exhausted"};
    for (const auto& t : p.retryOn) {
      bool code =
          t.size() == 3 && std::all_of(t.begin(), t.end(), ::isdigit) && t[0] >= '1' && t[0] <= '5';
      if (code || std::find(kRetryOn.begin(), kRetryOn.end(), t) != kRetryOn.end()) continue;
      std::string msg = "unknown retryOn \"" + t + "\"";
      std::string hint = didYouMean(t, kRetryOn);
      if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
      rr.error("retryOn", msg);
    }
    rr.readUint("budgetPercent", p.budgetPercent, 0, 100);
    out.retry = p;
  }
  int mode = r.readEnum("onFailure", {"failfast", "failover", "failsafe"});
  if (mode >= 0) out.onFailure = static_cast<FailureMode>(mode);
  YAML::Node fs = r.get("failsafe");
  if (fs.IsDefined() && !fs.IsNull()) {
    MapReader fr(sink, fs, r.child("failsafe"));
    FailsafeReply f;
    uint32_t status = 200;
    fr.readUint("status", status, 100, 599);
    f.status = static_cast<int>(status);
    fr.readString("body", f.body);
    fr.readStringMap("headers", f.headers);
    out.failsafe = f;
  }
  if (out.onFailure == FailureMode::kFailsafe && !out.failsafe) {
    r.error("onFailure", "onFailure: failsafe needs a failsafe reply");
  }
  YAML::Node fault = r.get("fault");
  if (fault.IsDefined() && !fault.IsNull()) {
    MapReader fr(sink, fault, r.child("fault"));
    FaultConfig f;
    YAML::Node delay = fr.get("delay");
    if (delay.IsDefined()) {
      MapReader dr(sink, delay, fr.child("delay"));
      Duration d{};
      dr.required("fixed");
      if (dr.get("fixed").IsDefined() && dr.readDuration("fixed", d)) f.delay = d;
      std::optional<double> pct;
      readPercentage(dr, pct, "percent");
      f.delayPercent = pct.value_or(100);
    }
    YAML::Node abort = fr.get("abort");
    if (abort.IsDefined()) {
      MapReader ar(sink, abort, fr.child("abort"));
      uint32_t status = 503;
      ar.required("status");
      ar.readUint("status", status, 200, 599);
      f.abortStatus = static_cast<int>(status);
      std::optional<double> pct;
      readPercentage(ar, pct, "percent");
      f.abortPercent = pct.value_or(100);
    }
    if (!f.delay && !f.abortStatus) fr.error("delay", "a fault needs a delay, an abort, or both");
    out.fault = f;
  }
  r.readStringMap("addRequestHeaders", out.addRequestHeaders);
  r.readStringList("removeRequestHeaders", out.removeRequestHeaders);
  for (auto& h : out.removeRequestHeaders) h = lower(h);
  std::string rewrite;
  if (r.get("prefixRewrite").IsDefined() && r.readString("prefixRewrite", rewrite)) {
    out.prefixRewrite = rewrite;
    if (!out.match.pathPrefix) r.error("prefixRewrite", "prefixRewrite needs match.pathPrefix");
  }
}

void readRouteSpec(ErrorSink& sink, MapReader& spec, RouteConfig& out, RuleSet& rules) {
  spec.required("hosts");
  spec.readStringList("hosts", out.hosts);
  for (auto& h : out.hosts) h = lower(h);
  YAML::Node list = spec.get("rules");
  if (!list.IsDefined() || !list.IsSequence() || list.size() == 0) {
    spec.error("rules", "expected a non-empty list of rules");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    RouteRule rule;
    readRouteRule(sink, list[i], indexed(spec.child("rules"), i), rule, rules);
    out.rules.push_back(std::move(rule));
  }
}

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

void readServiceSpec(ErrorSink& sink, MapReader& spec, ServiceConfig& out) {
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

}  // namespace

void readRuleDocument(ErrorSink& sink, const YAML::Node& doc, RuleSet& rules) {
  if (doc.IsNull()) return;  // an empty document between two "---"
  MapReader r(sink, doc, "");
  if (!r.ok()) return;
  std::string apiVersion, kind, name;
  r.required("apiVersion");
  if (r.readString("apiVersion", apiVersion) && !apiVersion.empty() && apiVersion != kApiVersion &&
      apiVersion != kOpenSergoApiVersion) {
    r.error("apiVersion", "unsupported apiVersion \"" + apiVersion + "\" (expected " + kApiVersion +
                              " or " + kOpenSergoApiVersion + ")");
  }
  r.required("kind");
  r.readString("kind", kind);
  {
    MapReader m(sink, r.get("metadata"), "metadata");
    m.required("name");
    m.readString("name", name);
    Labels ignored;
    m.readStringMap("labels", ignored);
    std::string ns;
    m.readString("namespace", ns);
  }
  if (!r.get("metadata").IsDefined()) r.required("metadata");
  if (r.get("selector").IsDefined()) {
    // Which sidecars the reference control plane serves this document to; checked here,
    // used only there (control-plane.md).
    MapReader sel(sink, r.get("selector"), "selector");
    std::string service;
    Labels labels;
    sel.readString("service", service);
    sel.readStringMap("labels", labels);
  }
  YAML::Node specNode = r.get("spec");
  if (!specNode.IsDefined()) {
    r.required("spec");
    return;
  }
  MapReader spec(sink, specNode, "spec");
  if (!spec.ok()) return;
  DocumentInfo info{kind, name, originOf(sink, doc), "", YAML::Dump(doc)};
  info.hash = sha256Hex(info.yaml);
  // Each kind: a config named and placed like its document, filled by its reader.
  auto read = [&](auto& list, auto&& fill) {
    typename std::remove_reference_t<decltype(list)>::value_type item;
    item.name = name;
    item.origin = info.origin;
    if constexpr (requires { item.hash; }) item.hash = info.hash;
    fill(item);
    list.push_back(std::move(item));
  };
  if (kind == "Service") {
    read(rules.services, [&](ServiceConfig& s) { readServiceSpec(sink, spec, s); });
  } else if (kind == "Route") {
    read(rules.routes, [&](RouteConfig& r) { readRouteSpec(sink, spec, r, rules); });
  } else if (kind == "TrafficLabel") {
    read(rules.trafficLabels, [&](TrafficLabelConfig& l) { readTrafficLabelSpec(sink, spec, l); });
  } else if (kind == "RateLimit") {
    read(rules.rateLimits, [&](RateLimitConfig& rl) { readRateLimitSpec(sink, spec, rl); });
  } else if (kind == "CircuitBreaker") {
    read(rules.circuitBreakers,
         [&](CircuitBreakerConfig& cb) { readCircuitBreakerSpec(sink, spec, cb); });
  } else if (kind == "ConcurrencyLimit") {
    read(rules.concurrencyLimits,
         [&](ConcurrencyLimitConfig& c) { readConcurrencyLimitSpec(sink, spec, c); });
  } else if (kind == "HmacAuth") {
    read(rules.hmacAuths, [&](HmacAuthConfig& h) { readHmacAuthSpec(sink, spec, h); });
  } else if (apiVersion == kOpenSergoApiVersion &&
             readOpenSergoDocument(sink, kind, info, spec, rules)) {
  } else if (!kind.empty()) {
    static const std::vector<std::string> kKinds = {
        "Service",          "Route",   "TrafficLabel", "RateLimit", "CircuitBreaker",
        "ConcurrencyLimit", "HmacAuth"};
    std::string msg = "unknown kind \"" + kind + "\"";
    std::string hint = didYouMean(kind, kKinds);
    if (!hint.empty()) {
      msg += " (did you mean \"" + hint + "\"?)";
    } else {
      msg +=
          " (supported: Service, Route, TrafficLabel, RateLimit, CircuitBreaker, "
          "ConcurrencyLimit, HmacAuth)";
    }
    r.error("kind", msg);
    // Keys under spec are not checked for a kind we do not know.
    for (const auto& kv : specNode) spec.get(kv.first.Scalar());
    return;
  }
  rules.documents.push_back(std::move(info));
}

void readRuleSource(const Source& src, RuleSet& rules, ConfigErrors& errors) {
  ErrorSink sink(src.name, errors);
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(src.content);
    for (const auto& doc : docs) readRuleDocument(sink, doc, rules);
  } catch (const YAML::Exception& e) {
    sink.addAt(e.mark.line + 1, e.mark.column + 1, "", e.msg);
  }
}

void finishConfig(Config& cfg, RuleSet& rules, ConfigErrors& errors) {
  resolveOpenSergo(cfg.bootstrap, rules, errors);
  for (auto& s : rules.services) {
    if (s.name == kLocalAppService) {
      errors.push_back({s.origin.file, s.origin.line, s.origin.column, "metadata.name",
                        std::string("service name \"") + kLocalAppService + "\" is reserved"});
      continue;
    }
    auto [it, inserted] = cfg.services.emplace(s.name, s);
    if (!inserted) {
      errors.push_back({s.origin.file, s.origin.line, s.origin.column, "metadata.name",
                        "duplicate Service \"" + s.name + "\" (first defined at " +
                            it->second.origin.file + ":" + std::to_string(it->second.origin.line) +
                            ")"});
    }
  }
  // The local app is a service like any other, named kLocalAppService.
  ServiceConfig local;
  local.name = kLocalAppService;
  local.origin = Origin{"<bootstrap>", 0, 0};
  local.endpoints.push_back(EndpointConfig{
      cfg.bootstrap.localApp.address, cfg.bootstrap.localApp.address.toString(), 1, {}});
  cfg.services.emplace(local.name, local);

  std::set<std::string> routeNames;
  for (const auto& r : rules.routes) {
    if (!routeNames.insert(r.name).second) {
      errors.push_back({r.origin.file, r.origin.line, r.origin.column, "metadata.name",
                        "duplicate Route \"" + r.name + "\""});
    }
  }
  std::vector<std::string> known;
  for (const auto& [name, s] : cfg.services) known.push_back(name);
  for (const auto& ref : rules.serviceRefs) {
    if (cfg.services.count(ref.service)) continue;
    std::string msg = "unknown service \"" + ref.service + "\"";
    std::string hint = didYouMean(ref.service, known);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
    errors.push_back({ref.file, ref.at.line, ref.at.column, ref.path, msg});
  }
  for (const auto& l : cfg.bootstrap.listeners) {
    if (!l.tcpService.empty() && !cfg.services.count(l.tcpService)) {
      std::string hint = didYouMean(l.tcpService, known);
      errors.push_back({"<bootstrap>", 0, 0, "listeners." + l.name + ".tcpService",
                        "unknown service \"" + l.tcpService + "\"" +
                            (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)")});
    }
  }
  auto checkTarget = [&](const RuleTarget& t, const Origin& o, const std::string& kind,
                         const std::string& name) {
    if (!t.service.empty() && !cfg.services.count(t.service)) {
      std::string hint = didYouMean(t.service, known);
      errors.push_back({o.file, o.line, o.column, "spec.target.service",
                        kind + " " + name + ": unknown service \"" + t.service + "\"" +
                            (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)")});
    }
  };
  for (const auto& rl : rules.rateLimits) {
    checkTarget(rl.target, rl.origin, "RateLimit", rl.name);
    if (rl.global && !cfg.bootstrap.redis.address) {
      errors.push_back(
          {rl.origin.file, rl.origin.line, rl.origin.column, "spec.mode",
           "RateLimit " + rl.name + ": mode: global needs redis.address in the bootstrap"});
    }
  }
  for (const auto& cb : rules.circuitBreakers) {
    checkTarget(cb.target, cb.origin, "CircuitBreaker", cb.name);
  }
  for (const auto& c : rules.concurrencyLimits) {
    checkTarget(c.target, c.origin, "ConcurrencyLimit", c.name);
  }
  for (const auto& h : rules.hmacAuths) checkTarget(h.target, h.origin, "HmacAuth", h.name);
  cfg.hmacAuths = std::move(rules.hmacAuths);
  cfg.concurrencyLimits = std::move(rules.concurrencyLimits);
  cfg.rateLimits = std::move(rules.rateLimits);
  cfg.circuitBreakers = std::move(rules.circuitBreakers);
  cfg.routes = std::move(rules.routes);
  cfg.trafficLabels = std::move(rules.trafficLabels);
  cfg.documents = std::move(rules.documents);
}

}  // namespace detail
}  // namespace tether::config
