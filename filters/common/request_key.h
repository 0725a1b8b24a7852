#pragma once

#include <string>
#include <string_view>

#include "config/rules.h"
#include "proxy/codec/headers.h"
#include "proxy/stream/stream_info.h"

namespace tether::filters {

/// The IP of an "ip:port" peer address (IPv6 addresses keep their brackets).
std::string peerIp(std::string_view peer);

/// The request's key for a limit rule (RateLimit, ConcurrencyLimit): the authenticated
/// caller (else what the request says of itself), the client's IP or a header; empty for
/// key: none or when absent. `scratch` holds the value when it has to be built.
std::string_view requestKey(const config::RateLimitKey& key, const proxy::RequestHead& head,
                            const proxy::StreamInfo& info, std::string& scratch);

}  // namespace tether::filters
