#include "filters/metrics/metrics_filter.h"

#include "proxy/worker/worker.h"

namespace tether::filters {

namespace {

/// A gRPC call that ended without a grpc-status (reset, a non-gRPC error page) is UNKNOWN.
int grpcStatusOrUnknown(const proxy::StreamInfo& info) {
  return info.grpcStatus >= 0 ? info.grpcStatus : 2;
}

}  // namespace

void MetricsFilter::onStreamComplete(const proxy::StreamInfo& info) {
  double seconds =
      std::chrono::duration<double>(callbacks_->worker().clock().steadyNow() - info.start).count();
  callbacks_->worker().stats().recordRequest(info.direction, info.service, info.route, info.status,
                                             info.reason, seconds,
                                             info.grpc ? grpcStatusOrUnknown(info) : -1);
}

}  // namespace tether::filters
