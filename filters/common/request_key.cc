#include "filters/common/request_key.h"

namespace tether::filters {

std::string peerIp(std::string_view peer) {
  size_t colon = peer.rfind(':');
  return std::string(colon == std::string_view::npos ? peer : peer.substr(0, colon));
}

std::string_view requestKey(const config::RateLimitKey& key, const proxy::RequestHead& head,
                            const proxy::StreamInfo& info, std::string& scratch) {
  switch (key.kind) {
    case config::RateLimitKey::Kind::kNone:
      break;
    case config::RateLimitKey::Kind::kCaller:
      // The authenticated caller when an HmacAuth rule verified one, else what the request
      // says of itself.
      if (!info.caller.empty()) return info.caller;
      if (const proxy::HeaderString* v = head.headers.get("x-tether-caller")) return *v;
      break;
    case config::RateLimitKey::Kind::kSourceIp:
      scratch = peerIp(info.downstreamAddress);
      return scratch;
    case config::RateLimitKey::Kind::kHeader:
      if (const proxy::HeaderString* v = head.headers.get(key.header)) return *v;
      break;
  }
  return {};
}

}  // namespace tether::filters
