#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tether::config {

using Duration = std::chrono::milliseconds;

/// Parses a duration string such as "300ms", "10s", "1m", "1h" or "1m30s".
/// Returns nullopt for anything else (no bare numbers: a unit is required).
std::optional<Duration> parseDuration(std::string_view text);

/// Formats a duration the way parseDuration reads it ("1500ms", "2s", "5m").
std::string formatDuration(Duration d);

}  // namespace tether::config
