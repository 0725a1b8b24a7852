#include "filters/common/reply.h"

#include <algorithm>
#include <chrono>
#include <string>

namespace tether::filters {

namespace {

/// Whole seconds, rounded up, at least 1 (Retry-After, RateLimit reset).
std::string ceilSeconds(int64_t ns) {
  return std::to_string(std::max<int64_t>(1, (ns + 999'999'999) / 1'000'000'000));
}

}  // namespace

void replyProtected(proxy::StreamCallbacks& cb, const config::FallbackReply& fallback, int status,
                    std::string_view body, proxy::Reason reason, proxy::HeaderMap extra) {
  for (const auto& [name, value] : fallback.headers) {
    std::string lower = name;
    proxy::toLowerInPlace(lower);
    extra.set(lower, value);
  }
  if (fallback.status != 0) {
    cb.sendLocalReply(fallback.status, fallback.body, reason, &extra);
  } else {
    cb.sendLocalReply(status, body, reason, &extra);
  }
}

void replyRateLimited(proxy::StreamCallbacks& cb, const config::RateLimitConfig& rule,
                      const filters::RateDecision& decision) {
  int64_t window = std::chrono::duration_cast<std::chrono::seconds>(rule.per).count();
  std::string reset = ceilSeconds(decision.retryAfterNs);
  proxy::HeaderMap h;
  h.add("retry-after", reset);
  // IETF draft-ietf-httpapi-ratelimit-headers: the policy, and where the client stands.
  h.add("ratelimit-policy",
        std::to_string(rule.limit) + ";w=" + std::to_string(std::max<int64_t>(1, window)));
  h.add("ratelimit", "limit=" + std::to_string(rule.limit) + ", remaining=0, reset=" + reset);
  replyProtected(cb, rule.fallback, 429, "rate limited\n", proxy::Reason::kRateLimited,
                 std::move(h));
}

void replyCircuitOpen(proxy::StreamCallbacks& cb, const config::CircuitBreakerConfig& rule) {
  proxy::HeaderMap h;
  h.add(
      "retry-after",
      ceilSeconds(std::chrono::duration_cast<std::chrono::nanoseconds>(rule.openDuration).count()));
  replyProtected(cb, rule.fallback, 503, "circuit open\n", proxy::Reason::kCircuitOpen,
                 std::move(h));
}

void replyFailure(proxy::StreamCallbacks& cb, proxy::Reason reason) {
  cb.sendLocalReply(proxy::defaultStatus(reason), std::string(proxy::reasonName(reason)) + "\n",
                    reason);
}

}  // namespace tether::filters
