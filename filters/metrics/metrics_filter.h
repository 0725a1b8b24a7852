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

class MetricsFilterFactory : public proxy::FilterFactory {
 public:
  std::unique_ptr<proxy::Filter> create() const override {
    return std::make_unique<MetricsFilter>();
  }
};

}  // namespace tether::filters
