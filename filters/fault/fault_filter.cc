#include "filters/fault/fault_filter.h"

#include "filters/router/route.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;

FilterStatus FaultFilter::onRequestHeaders(proxy::RequestHead&, bool) {
  const auto& fault = routeOf(*callbacks_).routeRule().fault;
  if (!fault) return FilterStatus::kContinue;
  if (fault->delay && roll(fault->delayPercent)) {
    delay_.arm(callbacks_->worker().deadlines(), *fault->delay, *this);
    return FilterStatus::kStopIteration;
  }
  return maybeAbort() ? FilterStatus::kContinue : FilterStatus::kStopIteration;
}

void FaultFilter::onDeadline() {
  if (maybeAbort()) callbacks_->continueRequest();
}

bool FaultFilter::maybeAbort() {
  const config::FaultConfig& fault = *routeOf(*callbacks_).routeRule().fault;
  if (!fault.abortStatus || !roll(fault.abortPercent)) return true;
  callbacks_->sendLocalReply(*fault.abortStatus, "fault injected\n", proxy::Reason::kFaultInjected);
  return false;
}

bool FaultFilter::roll(double percent) {
  // In hundredths of a percent: 12.5 -> 1250 of 10,000.
  return static_cast<double>(callbacks_->worker().random() % 10000) < percent * 100;
}

}  // namespace tether::filters
