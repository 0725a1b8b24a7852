#include "proxy/common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>

namespace tether::proxy {

namespace {
std::atomic<int> gLevel{static_cast<int>(LogLevel::kInfo)};
}

void setLogLevel(LogLevel level) { gLevel = static_cast<int>(level); }

bool logEnabled(LogLevel level) { return static_cast<int>(level) >= gLevel.load(); }

std::string formatUtc(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ", static_cast<int>(ms.count()));
  return stamp;
}

void fatal(std::string_view message) {
  logLine(LogLevel::kError, std::string("fatal: ") + std::string(message));
  std::abort();
}

void logLine(LogLevel level, std::string_view message) {
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  std::string line;
  line.reserve(message.size() + 48);
  line += formatUtc(std::chrono::system_clock::now());
  line += ' ';
  line += kNames[static_cast<int>(level)];
  line += ' ';
  line += message;
  line += '\n';
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

}  // namespace tether::proxy
