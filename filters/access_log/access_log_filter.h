#pragma once

#include <string>

#include "proxy/stream/filter.h"

namespace tether::filters {

/// Writes one JSON line per finished request to the worker's access log (bootstrap
/// `accessLog.path`). Fields: time, direction, listener, downstream, method, authority,
/// path, status, reason, duration_ms, bytes_received, bytes_sent, service, route, upstream.
class AccessLogFilter : public proxy::Filter {
 public:
  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  void onStreamComplete(const proxy::StreamInfo& info) override;

 private:
  // Copied before later filters rewrite them: the log shows what the client sent.
  std::string method_, authority_, path_;
};

using AccessLogFilterFactory = proxy::FactoryOf<AccessLogFilter>;

/// Formats one access-log line (exposed for tests): the stream began at wall time `start`
/// and took `duration`.
std::string formatAccessLogLine(const proxy::StreamInfo& info, std::string_view method,
                                std::string_view authority, std::string_view path,
                                std::chrono::system_clock::time_point start,
                                std::chrono::nanoseconds duration);

}  // namespace tether::filters
