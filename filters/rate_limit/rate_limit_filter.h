#pragma once

#include <memory>
#include <string>

#include "filters/common/governance.h"
#include "proxy/common/deadline_queue.h"
#include "proxy/stream/filter.h"
#include "proxy/upstream/redis_client.h"

namespace tether::filters {

/// RateLimit rules: every matching local rule first (atomics shared by the workers), then
/// each matching global rule with one Redis round trip (its local fallback decides when
/// Redis is away or slow). A refused request is answered 429 rate_limited with Retry-After
/// and RateLimit headers; a leaky bucket admits with a wait, which the request spends on
/// a timer (the worker goes on) before iteration continues.
class RateLimitFilter : public proxy::Filter, public proxy::DeadlineCallback {
 public:
  explicit RateLimitFilter(std::shared_ptr<const filters::Governance> governance)
      : governance_(std::move(governance)) {}

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  void onDestroy() override;
  /// The pacing wait is over.
  void onDeadline() override { callbacks_->continueRequest(); }

 private:
  /// Global rules from `next_` on. True when the request may go on now; false when it was
  /// answered or waits (for Redis, or for its pacing slot).
  bool admitGlobal();
  /// One decision: false when it refused (the reply is sent); a wait is kept.
  bool apply(const filters::RateLimiter& limiter, const filters::RateDecision& d);
  void onGlobalAnswer(const redisReply* reply);
  void onRedisTimeout();
  /// After a wait for Redis: the remaining global rules, then the pacing wait.
  void resume();
  /// Starts the pacing wait, if any. True when the request may go on now.
  bool pace();

  std::shared_ptr<const filters::Governance> governance_;
  int64_t waitNs_ = 0;                       // the longest leaky-bucket slot so far, from now
  size_t next_ = 0;                          // the next rule to consider globally
  filters::RateLimiter* waiting_ = nullptr;  // the global rule asked of Redis
  std::string keyValue_;
  proxy::RedisClient::Call* call_ = nullptr;
  proxy::Deadline pacing_;
  proxy::Deadline redisTimeout_;
  struct RedisTimeout : proxy::DeadlineCallback {
    RateLimitFilter* self;
    explicit RedisTimeout(RateLimitFilter* s) : self(s) {}
    void onDeadline() override { self->onRedisTimeout(); }
  } redisTimeoutDone_{this};
};

using RateLimitFilterFactory =
    proxy::FactoryOf<RateLimitFilter, std::shared_ptr<const filters::Governance>>;

}  // namespace tether::filters
