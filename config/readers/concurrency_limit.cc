// ConcurrencyLimit: requests in flight per target.

#include "config/readers/readers.h"

namespace tether::config::detail {

void readConcurrencyLimitSpec(ErrorSink& sink, MapReader& spec, ConcurrencyLimitConfig& out,
                              RuleSet&) {
  readRuleTarget(sink, spec, out.target);
  spec.required("maxConcurrency");
  spec.readUint("maxConcurrency", out.maxConcurrency, 1, 10'000'000);
  readLimitKey(spec, out.key);
  spec.readUint("maxKeys", out.maxKeys, 1, 10'000'000);
  readFallback(sink, spec, out.fallback);
}

}  // namespace tether::config::detail
