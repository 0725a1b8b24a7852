// TrafficLabel: which requests join a lane (canary tagging).

#include "config/readers/readers.h"

namespace tether::config::detail {

void readTrafficLabelSpec(ErrorSink& sink, MapReader& spec, TrafficLabelConfig& out, RuleSet&) {
  YAML::Node match = spec.get("match");
  if (match.IsDefined() && !match.IsNull()) {
    out.hasMatch = true;
    readRouteMatch(sink, match, spec.child("match"), out.match, &out.percentage);
  }
  std::optional<double> topLevel;
  readPercentage(spec, topLevel);
  if (topLevel) {
    if (out.percentage) spec.error("percentage", "percentage is already set under match");
    out.percentage = topLevel;
  }
  spec.required("label");
  if (spec.readString("label", out.label) && !out.label.empty()) {
    bool ok = out.label.size() <= 63;
    for (char c : out.label) {
      ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    }
    if (!ok) spec.error("label", "a label is 1-63 of [A-Za-z0-9._-]");
  }
  int fb = spec.readEnum("fallback", {"unlabelled", "none"});
  if (fb == 1) out.fallback = TrafficLabelConfig::Fallback::kNone;
  if (!out.hasMatch && !out.percentage) {
    spec.error("match", "a TrafficLabel needs a match, a percentage, or both");
  }
}

}  // namespace tether::config::detail
