// OpenSergo fault-tolerance documents (fault-tolerance.opensergo.io/v1alpha1), read as-is
// and mapped onto Tether's RateLimit, CircuitBreaker and ConcurrencyLimit rules. The mapping
// is documented in docs/configuration.md ("OpenSergo input").

#include "config/loader_internal.h"

namespace tether::config::detail {

namespace {

/// Strategies carry their name; target and fallback come from the FaultToleranceRule.
void readRateLimitStrategy(MapReader& spec, RateLimitConfig& out) {
  std::string metric = "RequestAmount";
  spec.readString("metricType", metric);
  if (metric != "RequestAmount") {
    spec.error("metricType",
               "unsupported metricType \"" + metric + "\" (Tether limits RequestAmount)");
  }
  std::string mode = "Local";
  spec.readString("limitMode", mode);
  if (mode != "Local" && mode != "Global") {
    spec.error("limitMode", "invalid limitMode \"" + mode + "\" (expected Local or Global)");
  }
  spec.required("threshold");
  spec.readUint("threshold", out.limit, 1, 100'000'000);
  // Sentinel's QPS rule is a sliding statistic: the exact sliding window is its closest.
  // Across replicas (Global, kept in Redis) the fixed window is what Tether offers.
  out.global = mode == "Global";
  out.algorithm =
      out.global ? RateLimitAlgorithm::kFixedWindow : RateLimitAlgorithm::kSlidingWindow;
  out.burst = out.limit;
  out.localFallbackLimit = out.limit;
  if (spec.get("statDurationSeconds").IsDefined()) {
    uint32_t seconds = 1;
    spec.readUint("statDurationSeconds", seconds, 1, 86400);
    out.per = std::chrono::seconds(seconds);
  }
  spec.readDuration("statDuration", out.per);
}

void readThrottlingStrategy(MapReader& spec, RateLimitConfig& out) {
  // Throttling paces: one request per minIntervalOfRequests, waiting up to queueTimeout.
  out.algorithm = RateLimitAlgorithm::kLeakyBucket;
  out.limit = 1;
  out.burst = 1;
  spec.required("minIntervalOfRequests");
  spec.readDuration("minIntervalOfRequests", out.per);
  spec.readDuration("queueTimeout", out.maxQueueTime);
}

void readConcurrencyStrategy(MapReader& spec, ConcurrencyLimitConfig& out) {
  spec.required("maxConcurrency");
  spec.readUint("maxConcurrency", out.maxConcurrency, 1, 10'000'000);
  std::string mode = "Local";
  spec.readString("limitMode", mode);
  if (mode != "Local") {
    spec.error("limitMode", "limitMode \"" + mode + "\" is not supported (Tether: Local)");
  }
}

void readBreakerStrategy(ErrorSink& sink, MapReader& spec, CircuitBreakerConfig& out) {
  int st = spec.readEnum("strategy", {"ErrorRequestRatio", "SlowRequestRatio"});
  if (st >= 0) {
    out.strategy = st == 0 ? BreakerStrategy::kErrorRatio : BreakerStrategy::kSlowRatio;
  }
  std::optional<double> ratio;
  readPercentage(spec, ratio, "triggerRatio");
  if (ratio) out.threshold = std::max(0.0001, *ratio / 100);
  spec.readDuration("statDuration", out.window);
  spec.readDuration("recoveryTimeout", out.openDuration);
  if (out.maxOpenDuration < out.openDuration) out.maxOpenDuration = out.openDuration;
  spec.readUint("minRequestAmount", out.minRequests, 1, 1'000'000);
  YAML::Node slow = spec.get("slowConditions");
  if (slow.IsDefined() && !slow.IsNull()) {
    MapReader s(sink, slow, spec.child("slowConditions"));
    s.readDuration("maxAllowedRt", out.slowCallThreshold);
  }
  // Sentinel closes after one successful probe: the same here, without a ramp.
  out.halfOpenProbes = 1;
  out.recoveryStep = 1;
}

void readFallbackAction(ErrorSink& sink, MapReader& spec, FallbackReply& out) {
  std::string behavior;
  spec.required("behavior");
  spec.readString("behavior", behavior);
  if (!behavior.empty() && behavior != "ReturnProvidedResponse") {
    spec.error("behavior", "unsupported behavior \"" + behavior +
                               "\" (Tether supports ReturnProvidedResponse)");
  }
  YAML::Node d = spec.get("behaviorDesc");
  if (!d.IsDefined() || d.IsNull()) return;
  MapReader desc(sink, d, spec.child("behaviorDesc"));
  uint32_t status = 429;
  desc.readUint("responseStatusCode", status, 100, 599);
  out.status = static_cast<int>(status);
  desc.readString("responseContentBody", out.body);
  YAML::Node headers = desc.get("responseAdditionalHeaders");
  if (!headers.IsDefined() || headers.IsNull()) return;
  if (!headers.IsSequence()) {
    sink.add(headers, desc.child("responseAdditionalHeaders"), "expected a list of {key, value}");
    return;
  }
  for (size_t i = 0; i < headers.size(); ++i) {
    MapReader h(sink, headers[i],
                desc.child("responseAdditionalHeaders") + "[" + std::to_string(i) + "]");
    std::string key, value;
    h.required("key");
    h.readString("key", key);
    h.readString("value", value);
    if (!key.empty()) out.headers[key] = value;
  }
}

/// `name` or `{ name, kind }`.
std::string readReference(ErrorSink& sink, const YAML::Node& n, const std::string& path) {
  if (n.IsScalar()) return n.Scalar();
  MapReader r(sink, n, path);
  std::string name, kind;
  r.required("name");
  r.readString("name", name);
  r.readString("kind", kind);
  return name;
}

void readFaultToleranceRule(ErrorSink& sink, MapReader& spec, RuleSet::OpenSergo::Rule& out) {
  YAML::Node sel = spec.get("selector");
  if (sel.IsDefined() && !sel.IsNull()) {
    MapReader s(sink, sel, spec.child("selector"));
    s.readString("app", out.app);
  }
  YAML::Node targets = spec.get("targets");
  if (targets.IsDefined() && targets.IsSequence()) {
    for (size_t i = 0; i < targets.size(); ++i) {
      std::string path = spec.child("targets") + "[" + std::to_string(i) + "]";
      MapReader t(sink, targets[i], path);
      std::string resource;
      t.required("targetResourceName");
      t.readString("targetResourceName", resource);
      if (!resource.empty() && resource[0] != '/') {
        t.error(
            "targetResourceName",
            "\"" + resource + "\" is not an HTTP path: Tether matches resources by path prefix");
      }
      out.paths.push_back(resource);
    }
  }
  YAML::Node strategies = spec.get("strategies");
  if (!strategies.IsDefined() || !strategies.IsSequence() || strategies.size() == 0) {
    spec.error("strategies", "a FaultToleranceRule needs at least one strategy");
  } else {
    for (size_t i = 0; i < strategies.size(); ++i) {
      out.strategies.push_back(readReference(
          sink, strategies[i], spec.child("strategies") + "[" + std::to_string(i) + "]"));
    }
  }
  YAML::Node fb = spec.get("fallbackAction");
  if (fb.IsDefined() && !fb.IsNull())
    out.fallback = readReference(sink, fb, spec.child("fallbackAction"));
}

}  // namespace

bool readOpenSergoDocument(ErrorSink& sink, const std::string& kind, const DocumentInfo& info,
                           MapReader& spec, RuleSet& rules) {
  RuleSet::OpenSergo& os = rules.openSergo;
  if (kind != "FaultToleranceRule") os.hashes[info.name] = info.hash;
  if (kind == "RateLimitStrategy") {
    readRateLimitStrategy(spec, os.rateLimits[info.name]);
  } else if (kind == "ThrottlingStrategy") {
    readThrottlingStrategy(spec, os.rateLimits[info.name]);
  } else if (kind == "ConcurrencyLimitStrategy") {
    readConcurrencyStrategy(spec, os.concurrency[info.name]);
  } else if (kind == "CircuitBreakerStrategy") {
    readBreakerStrategy(sink, spec, os.breakers[info.name]);
  } else if (kind == "HttpRequestFallbackAction") {
    readFallbackAction(sink, spec, os.fallbacks[info.name]);
  } else if (kind == "FaultToleranceRule") {
    RuleSet::OpenSergo::Rule rule;
    rule.name = info.name;
    rule.origin = info.origin;
    rule.hash = info.hash;
    readFaultToleranceRule(sink, spec, rule);
    os.rules.push_back(std::move(rule));
  } else {
    return false;
  }
  return true;
}

void resolveOpenSergo(const Bootstrap& bootstrap, RuleSet& rules, ConfigErrors& errors) {
  RuleSet::OpenSergo& os = rules.openSergo;
  for (const auto& rule : os.rules) {
    // The rule protects the app its selector names: on that app's own sidecar the requests
    // are inbound (to the local app), elsewhere they are outbound calls to that service.
    RuleTarget target;
    if (rule.app.empty() || rule.app == bootstrap.node.service) {
      target.direction = Direction::kInbound;
    } else {
      target.direction = Direction::kOutbound;
      target.service = rule.app;
    }
    FallbackReply fallback;
    if (!rule.fallback.empty()) {
      auto it = os.fallbacks.find(rule.fallback);
      if (it == os.fallbacks.end()) {
        errors.push_back({rule.origin.file, rule.origin.line, rule.origin.column,
                          "spec.fallbackAction",
                          "unknown HttpRequestFallbackAction \"" + rule.fallback + "\""});
      } else {
        fallback = it->second;
      }
    }
    std::vector<std::string> paths = rule.paths.empty() ? std::vector<std::string>{""} : rule.paths;
    for (const auto& strategy : rule.strategies) {
      for (const auto& path : paths) {
        RuleTarget t = target;
        t.pathPrefix = path;
        std::string name = rule.name + "/" + strategy + (paths.size() > 1 ? path : "");
        auto set = [&](auto item, auto& list) {
          item.name = name;
          item.origin = rule.origin;
          // State is kept across reloads by name and content: every document involved.
          item.hash = rule.hash + os.hashes[strategy] + os.hashes[rule.fallback];
          item.target = t;
          item.fallback = fallback;
          list.push_back(std::move(item));
        };
        if (auto it = os.rateLimits.find(strategy); it != os.rateLimits.end()) {
          set(it->second, rules.rateLimits);
        } else if (auto b = os.breakers.find(strategy); b != os.breakers.end()) {
          set(b->second, rules.circuitBreakers);
        } else if (auto c = os.concurrency.find(strategy); c != os.concurrency.end()) {
          set(c->second, rules.concurrencyLimits);
        } else {
          errors.push_back({rule.origin.file, rule.origin.line, rule.origin.column,
                            "spec.strategies", "unknown strategy \"" + strategy + "\""});
        }
      }
    }
  }
}

}  // namespace tether::config::detail
