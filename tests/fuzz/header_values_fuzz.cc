// The small header parsers every request may carry: x-tether-timeout-ms, grpc-timeout, the
// lane header and W3C baggage (read, and rewritten with the lane).

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/lane/lane_filter.h"
#include "filters/router/retry_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)tether::filters::parseTimeoutMs(text);
  (void)tether::filters::parseGrpcTimeoutMs(text);
  tether::proxy::RequestHead head;
  head.headers.add("baggage", std::string(text));
  std::string lane = tether::filters::laneOf(head);
  (void)tether::filters::withLaneBaggage(text, lane.empty() ? "canary" : lane);
  tether::proxy::RequestHead byHeader;
  byHeader.headers.add(std::string(tether::filters::kLaneHeader), std::string(text));
  (void)tether::filters::laneOf(byHeader);
  return 0;
}
