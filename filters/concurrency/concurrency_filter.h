#pragma once

#include <array>
#include <memory>

#include "filters/common/governance.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// Requests in flight: the Service's `limits.maxRequests` (Envoy's max_requests, all
/// workers together), then each matching ConcurrencyLimit rule per key. A request over a
/// limit is answered 503 overflow (or the rule's fallback); one admitted holds its slots
/// until the stream ends.
class ConcurrencyFilter : public proxy::Filter {
 public:
  explicit ConcurrencyFilter(std::shared_ptr<const filters::Governance> governance)
      : governance_(std::move(governance)) {}

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  void onDestroy() override;

 private:
  std::shared_ptr<const filters::Governance> governance_;
  filters::ServiceCounters* service_ = nullptr;  // counted in .active while set
  // Slots beyond 4 per request are not taken: a request matching more limits than that is
  // held to the first four.
  std::array<std::shared_ptr<filters::ConcurrencyLimiter::Counter>, 4> slots_;
  size_t slotCount_ = 0;
};

using ConcurrencyFilterFactory =
    proxy::FactoryOf<ConcurrencyFilter, std::shared_ptr<const filters::Governance>>;

}  // namespace tether::filters
