#include "filters/access_log/access_log_filter.h"

#include "proxy/common/json.h"
#include "proxy/common/log.h"
#include "proxy/worker/access_log.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

proxy::FilterStatus AccessLogFilter::onRequestHeaders(proxy::RequestHead& head, bool) {
  method_ = head.method;
  authority_ = head.authority;
  path_ = head.path;
  return proxy::FilterStatus::kContinue;
}

std::string formatAccessLogLine(const proxy::StreamInfo& info, std::string_view method,
                                std::string_view authority, std::string_view path,
                                std::chrono::system_clock::time_point start,
                                std::chrono::nanoseconds duration) {
  double durationMs = std::chrono::duration<double, std::milli>(duration).count();
  proxy::JsonWriter j;
  j.beginObject();
  j.key("time").value(proxy::formatUtc(start));
  j.key("direction").value(config::toString(info.direction));
  j.key("listener").value(info.listener);
  j.key("downstream").value(info.downstreamAddress);
  j.key("method").value(method);
  j.key("authority").value(authority);
  j.key("path").value(path);
  j.key("status").value(static_cast<int64_t>(info.status));
  j.key("reason").value(proxy::reasonName(info.reason));
  j.key("duration_ms").value(durationMs);
  j.key("bytes_received").value(static_cast<int64_t>(info.requestBytes));
  j.key("bytes_sent").value(static_cast<int64_t>(info.responseBytes));
  j.key("service").value(info.service);
  j.key("route").value(info.route);
  j.key("upstream").value(info.upstreamAddress);
  j.key("lane").value(info.lane);
  j.key("caller").value(info.caller);
  j.key("auth").value(info.auth);
  j.endObject();
  return j.str();
}

void AccessLogFilter::onStreamComplete(const proxy::StreamInfo& info) {
  proxy::AccessLogWriter* log = callbacks_->worker().accessLog();
  if (!log) return;
  auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      callbacks_->worker().clock().steadyNow() - info.start);
  auto start = std::chrono::system_clock::now() -
               std::chrono::duration_cast<std::chrono::system_clock::duration>(duration);
  log->append(formatAccessLogLine(info, method_, authority_, path_, start, duration));
}

}  // namespace tether::filters
