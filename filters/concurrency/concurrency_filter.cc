#include "filters/concurrency/concurrency_filter.h"

#include "filters/common/reply.h"
#include "filters/common/request_key.h"
#include "filters/router/route.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;

FilterStatus ConcurrencyFilter::onRequestHeaders(proxy::RequestHead& head, bool) {
  const RouteChoice& route = routeOf(*callbacks_);
  if (filters::ServiceCounters* c = route.counters) {
    // Accepted inaccuracy: workers race between the add and the check, so the limit can be
    // passed by at most one request per worker for an instant; the add is undone at once.
    if (c->active.fetch_add(1, std::memory_order_relaxed) >= route.service().limits.maxRequests) {
      c->active.fetch_sub(1, std::memory_order_relaxed);
      replyProtected(*callbacks_, {}, 503, "overflow\n", proxy::Reason::kOverflow);
      return FilterStatus::kStopIteration;
    }
    service_ = c;
  }
  const auto& limits = governance_->concurrencyLimits();
  if (limits.empty()) return FilterStatus::kContinue;
  const auto& info = callbacks_->info();
  const filters::Governance::Subject subject = route.subject(info, head);
  int64_t now = 0;
  for (const auto& limiter : limits) {
    if (slotCount_ == slots_.size()) break;
    const config::ConcurrencyLimitConfig& rule = limiter->config();
    if (!filters::Governance::matches(rule.target, subject)) continue;
    if (now == 0) now = callbacks_->worker().clock().nowNs();
    std::string scratch;
    auto slot = limiter->acquire(requestKey(rule.key, head, info, scratch), now);
    if (!slot) {
      replyProtected(*callbacks_, rule.fallback, 503, "overflow\n", proxy::Reason::kOverflow);
      return FilterStatus::kStopIteration;
    }
    slots_[slotCount_++] = std::move(slot);
  }
  return FilterStatus::kContinue;
}

void ConcurrencyFilter::onDestroy() {
  for (size_t i = 0; i < slotCount_; ++i) slots_[i]->fetch_sub(1, std::memory_order_relaxed);
  slotCount_ = 0;
  if (service_) service_->active.fetch_sub(1, std::memory_order_relaxed);
  service_ = nullptr;
}

}  // namespace tether::filters
