#pragma once

#include <string_view>

#include "config/rules.h"
#include "filters/rate_limit/rate_limiter.h"
#include "proxy/codec/headers.h"
#include "proxy/common/reason.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// The rejection contract every protection answers with, in one place: the rule's fallback
/// reply when it sets a status (its headers always), else `status` with `body`; `extra`
/// headers added; the stream adds x-tether-reason and, for gRPC, the grpc-status the
/// reason maps to.
void replyProtected(proxy::StreamCallbacks& cb, const config::FallbackReply& fallback, int status,
                    std::string_view body, proxy::Reason reason, proxy::HeaderMap extra = {});

/// 429 rate_limited with Retry-After and the IETF RateLimit-Policy / RateLimit headers.
void replyRateLimited(proxy::StreamCallbacks& cb, const config::RateLimitConfig& rule,
                      const filters::RateDecision& decision);

/// 503 circuit_open with Retry-After: the breaker's open duration.
void replyCircuitOpen(proxy::StreamCallbacks& cb, const config::CircuitBreakerConfig& rule);

/// The plain answer for a failure `reason`: its default status, its name as the body.
void replyFailure(proxy::StreamCallbacks& cb, proxy::Reason reason);

}  // namespace tether::filters
