#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/rules.h"
#include "proxy/common/json.h"

namespace tether::control {

// Pieces of the control-plane messages (docs/control-plane.md) that both ends write.

/// A NACK's reasons: (document, the sidecar's file:line:col message).
using NackReasons = std::vector<std::pair<std::string, std::string>>;

/// `labels` as a JSON object.
void writeLabels(proxy::JsonWriter& j, const config::Labels& labels);
/// `reasons` as a JSON array of {"document", "reason"} objects.
void writeReasons(proxy::JsonWriter& j, const NackReasons& reasons);

}  // namespace tether::control
