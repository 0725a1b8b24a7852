// Route: hosts, matches, weighted backends, timeouts, retries, failure modes, rewrites.

#include <algorithm>

#include "config/readers/readers.h"

namespace tether::config::detail {

namespace {

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
    std::string bad;
    p.on = parseRetryOn(p.retryOn, &bad);
    if (!bad.empty()) {
      std::string msg = "unknown retryOn \"" + bad + "\"";
      std::string hint = didYouMean(bad, retryOnNames());
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

}  // namespace

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

}  // namespace tether::config::detail
