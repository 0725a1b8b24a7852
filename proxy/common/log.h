#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace tether::proxy {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

/// "2026-11-26T10:30:01.123Z": UTC with milliseconds, for logs and access logs.
std::string formatUtc(std::chrono::system_clock::time_point t);

/// Sets the lowest level printed (default info). Call before starting workers.
void setLogLevel(LogLevel level);
bool logEnabled(LogLevel level);

/// Writes one line to stderr: "<UTC time> <level> <message>\n". One write(2) per line,
/// so lines from different threads never interleave.
void logLine(LogLevel level, std::string_view message);

/// For a library call that fails only when memory is exhausted (nghttp2's session and
/// option constructors, say): logs "fatal: <message>" and aborts, as Envoy does on the same
/// calls. Never for anything the network or a configuration can cause.
[[noreturn]] void fatal(std::string_view message);

}  // namespace tether::proxy

#define TETHER_LOG(level, msg)                                           \
  do {                                                                   \
    if (::tether::proxy::logEnabled(::tether::proxy::LogLevel::level)) { \
      ::tether::proxy::logLine(::tether::proxy::LogLevel::level, (msg)); \
    }                                                                    \
  } while (0)
