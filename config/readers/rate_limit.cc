// RateLimit: algorithm, limit and window, key, local or global (Redis), fallback.

#include "config/readers/readers.h"

namespace tether::config::detail {

void readRateLimitSpec(ErrorSink& sink, MapReader& spec, RateLimitConfig& out, RuleSet&) {
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

}  // namespace tether::config::detail
