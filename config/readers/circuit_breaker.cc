// CircuitBreaker: strategy, thresholds, window, open and half-open behaviour, recovery.

#include "config/readers/readers.h"

namespace tether::config::detail {

void readCircuitBreakerSpec(ErrorSink& sink, MapReader& spec, CircuitBreakerConfig& out, RuleSet&) {
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

}  // namespace tether::config::detail
