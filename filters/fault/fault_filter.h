#pragma once

#include <memory>

#include "proxy/common/deadline_queue.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// A route rule's `fault`: holds the configured share of requests for `delay` (on a timer;
/// the time counts against the route timeout, as a slow upstream would), then aborts the
/// configured share with `abort.status` (fault_injected). Stateless between requests.
class FaultFilter : public proxy::Filter, public proxy::DeadlineCallback {
 public:
  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  void onDestroy() override { delay_.cancel(); }
  /// The delay is over.
  void onDeadline() override;

 private:
  /// The abort, if rolled. True when the request may go on.
  bool maybeAbort();
  /// True for `percent` percent of calls (in hundredths of a percent).
  bool roll(double percent);

  proxy::Deadline delay_;
};

using FaultFilterFactory = proxy::FactoryOf<FaultFilter>;

}  // namespace tether::filters
