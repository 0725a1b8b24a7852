#pragma once

#include <memory>

#include "filters/router/route.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// Chooses the stream's route once, before any admission filter runs: the rule (inbound,
/// a matching outbound route, or passthrough to where an intercepted connection was going),
/// the backend by weight, the service's counters, and the route timeout (the tighter of
/// the rule's timeout and the caller's budget). Answers 404/502 no_route, and 504 when
/// the caller's budget is already spent.
class RouteFilter : public proxy::Filter {
 public:
  RouteFilter(std::shared_ptr<const RouteTable> table,
              std::shared_ptr<const filters::Governance> governance)
      : table_(std::move(table)), governance_(std::move(governance)) {}

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  void onDestroy() override { timeout_.cancel(); }

 private:
  std::shared_ptr<const RouteTable> table_;
  std::shared_ptr<const filters::Governance> governance_;
  RouteChoice choice_;
  RouteTimeout timeout_;
};

using RouteFilterFactory = proxy::FactoryOf<RouteFilter, std::shared_ptr<const RouteTable>,
                                            std::shared_ptr<const filters::Governance>>;

}  // namespace tether::filters
