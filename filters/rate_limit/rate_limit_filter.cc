#include "filters/rate_limit/rate_limit_filter.h"

#include <algorithm>

#include "filters/common/reply.h"
#include "filters/common/request_key.h"
#include "filters/router/route.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;

FilterStatus RateLimitFilter::onRequestHeaders(proxy::RequestHead& head, bool) {
  const auto& info = callbacks_->info();
  const filters::Governance::Subject subject = routeOf(*callbacks_).subject(info, head);
  int64_t now = 0;
  for (const auto& limiter : governance_->rateLimits()) {
    const config::RateLimitConfig& rule = limiter->config();
    if (rule.global || !filters::Governance::matches(rule.target, subject)) continue;
    if (now == 0) now = callbacks_->worker().clock().nowNs();
    std::string scratch;
    if (!apply(*limiter, limiter->acquire(requestKey(rule.key, head, info, scratch), now))) {
      return FilterStatus::kStopIteration;
    }
  }
  return admitGlobal() ? FilterStatus::kContinue : FilterStatus::kStopIteration;
}

bool RateLimitFilter::apply(const filters::RateLimiter& limiter, const filters::RateDecision& d) {
  if (!d.allowed) {
    replyRateLimited(*callbacks_, limiter.config(), d);
    return false;
  }
  waitNs_ = std::max(waitNs_, d.waitNs);  // a leaky bucket's slot
  return true;
}

bool RateLimitFilter::admitGlobal() {
  const auto& limits = governance_->rateLimits();
  proxy::Worker& worker = callbacks_->worker();
  const auto& info = callbacks_->info();
  const proxy::RequestHead& head = callbacks_->request();
  const filters::Governance::Subject subject = routeOf(*callbacks_).subject(info, head);
  while (next_ < limits.size()) {
    filters::RateLimiter& limiter = *limits[next_++];
    const config::RateLimitConfig& rule = limiter.config();
    if (!rule.global || !filters::Governance::matches(rule.target, subject)) continue;
    std::string scratch;
    keyValue_ = requestKey(rule.key, head, info, scratch);
    waiting_ = &limiter;
    proxy::RedisClient* redis = worker.redis();
    call_ = redis ? redis->eval(limiter.globalScript(), limiter.globalKey(keyValue_),
                                limiter.globalArgs(),
                                [this](const redisReply* r) { onGlobalAnswer(r); })
                  : nullptr;
    if (call_) {
      redisTimeout_.arm(worker.deadlines(), worker.bootstrap().redis.timeout, redisTimeoutDone_);
      return false;  // onGlobalAnswer or onRedisTimeout carries on
    }
    // Redis is away: the local fallback limit decides (counted, never silently open).
    if (!apply(limiter, limiter.acquireFallback(keyValue_, worker.clock().nowNs()))) return false;
  }
  return pace();
}

bool RateLimitFilter::pace() {
  if (waitNs_ <= 0) return true;
  // A leaky bucket paces: the request waits for its slot on a timer, the worker does not.
  pacing_.arm(callbacks_->worker().deadlines(),
              std::chrono::milliseconds((waitNs_ + 999'999) / 1'000'000), *this);
  waitNs_ = 0;
  return false;
}

void RateLimitFilter::onGlobalAnswer(const redisReply* reply) {
  call_ = nullptr;
  redisTimeout_.cancel();
  filters::RateDecision d;
  if (!filters::RateLimiter::parseGlobalReply(reply, d)) {
    d = waiting_->acquireFallback(keyValue_, callbacks_->worker().clock().nowNs());
  }
  if (apply(*waiting_, d)) resume();
}

void RateLimitFilter::onRedisTimeout() {
  if (call_) call_->cancel();
  call_ = nullptr;
  if (apply(*waiting_,
            waiting_->acquireFallback(keyValue_, callbacks_->worker().clock().nowNs()))) {
    resume();
  }
}

void RateLimitFilter::resume() {
  if (admitGlobal()) callbacks_->continueRequest();
}

void RateLimitFilter::onDestroy() {
  pacing_.cancel();
  redisTimeout_.cancel();
  if (call_) call_->cancel();
  call_ = nullptr;
}

}  // namespace tether::filters
