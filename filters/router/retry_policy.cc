#include "filters/router/retry_policy.h"

#include <algorithm>
#include <charconv>

namespace tether::filters {

std::chrono::milliseconds retryBackoff(int retry, uint64_t random) {
  int64_t window = 25;
  for (int i = 1; i < retry && window < 250; ++i) window *= 2;
  window = std::min<int64_t>(window, 250);
  return std::chrono::milliseconds(
      static_cast<int64_t>(random % static_cast<uint64_t>(window + 1)));
}

bool retryBudgetAllows(uint32_t activeRequests, uint32_t activeRetries, uint32_t budgetPercent) {
  uint64_t allowed = std::max<uint64_t>(3, uint64_t{activeRequests} * budgetPercent / 100);
  return activeRetries < allowed;
}

std::optional<int64_t> parseTimeoutMs(std::optional<std::string_view> header) {
  if (!header || header->empty() || header->size() > 12) return std::nullopt;
  if (!std::all_of(header->begin(), header->end(), ::isdigit)) return std::nullopt;
  int64_t v = 0;
  std::from_chars(header->data(), header->data() + header->size(), v);
  return v;
}

std::optional<int64_t> parseGrpcTimeoutMs(std::optional<std::string_view> header) {
  if (!header || header->size() < 2 || header->size() > 9) return std::nullopt;
  std::string_view digits = header->substr(0, header->size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  int64_t v = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), v);
  switch (header->back()) {
    case 'H':
      return v * 3'600'000;
    case 'M':
      return v * 60'000;
    case 'S':
      return v * 1000;
    case 'm':
      return v;
    case 'u':
      return (v + 999) / 1000;
    case 'n':
      return (v + 999'999) / 1'000'000;
    default:
      return std::nullopt;
  }
}

config::FailureMode effectiveFailureMode(const config::RouteRule& rule) {
  if (rule.onFailure) return *rule.onFailure;
  return rule.retry && rule.retry->attempts > 0 ? config::FailureMode::kFailover
                                                : config::FailureMode::kFailfast;
}

}  // namespace tether::filters
