#include "filters/metrics/metrics_filter.h"

#include "proxy/worker.h"

namespace tether::filters {

void MetricsFilter::onStreamComplete(const proxy::StreamInfo& info) {
  double seconds = std::chrono::duration<double>(proxy::MonoClock::now() - info.start).count();
  callbacks_->worker().stats().recordRequest(info.direction, info.service, info.route, info.status,
                                             info.reason, seconds);
}

}  // namespace tether::filters
