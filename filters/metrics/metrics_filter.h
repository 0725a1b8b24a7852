#pragma once

#include "proxy/stream/filter.h"

namespace tether::filters {

/// Counts every finished request in the worker's lock-free counters
/// (tether_requests_total, tether_request_duration_seconds). It sees local replies too,
/// since they pass the response path like upstream answers.
class MetricsFilter : public proxy::Filter {
 public:
  void onStreamComplete(const proxy::StreamInfo& info) override;
};

using MetricsFilterFactory = proxy::FactoryOf<MetricsFilter>;

}  // namespace tether::filters
