#pragma once

#include <memory>
#include <string>

#include "filters/router/route_table.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// Header that carries the canary lane between sidecars (also sent as the W3C baggage
/// member `tether-lane`).
inline constexpr const char* kLaneHeader = "x-tether-lane";
inline constexpr const char* kLaneBaggageKey = "tether-lane";

/// Full-link gray (canary tagging). Outbound: a request that already carries a lane keeps
/// it; otherwise the first matching TrafficLabel stamps one. The lane is forwarded in both
/// carriers, and the router sends the request to the service's endpoints on that lane.
/// Inbound: the lane is recorded (metrics, access log) and passed on to the app untouched.
class LaneFilter : public proxy::Filter {
 public:
  explicit LaneFilter(std::shared_ptr<const RouteTable> table) : table_(std::move(table)) {}
  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;

 private:
  std::shared_ptr<const RouteTable> table_;
};

using LaneFilterFactory = proxy::FactoryOf<LaneFilter, std::shared_ptr<const RouteTable>>;

/// The lane a request already carries (x-tether-lane, else baggage tether-lane); "" if
/// none or if the value is not a valid lane name.
std::string laneOf(const proxy::RequestHead& head);

/// Returns `baggage` with its tether-lane member set to `lane` (other members kept).
std::string withLaneBaggage(std::string_view baggage, std::string_view lane);

}  // namespace tether::filters
