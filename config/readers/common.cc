// The vocabulary the rule-kind readers share: string matches, targets, fallbacks, numbers
// and percentages.

#include <algorithm>
#include <sstream>

#include "config/readers/readers.h"

namespace tether::config {

bool StringMatch::matches(std::optional<std::string_view> candidate) const {
  if (kind == StringMatchKind::kPresent) return candidate.has_value();
  if (!candidate) return false;
  switch (kind) {
    case StringMatchKind::kExact:
      return *candidate == value;
    case StringMatchKind::kPrefix:
      return candidate->substr(0, value.size()) == value;
    case StringMatchKind::kRegex:
      return regex->fullMatch(*candidate);
    case StringMatchKind::kPresent:
      break;
  }
  return true;
}

namespace detail {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Origin originOf(ErrorSink& sink, const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  return Origin{sink.file(), m.line + 1, m.column + 1};
}

std::shared_ptr<const Regex> compileRegex(ErrorSink& sink, const YAML::Node& at,
                                          const std::string& path, const std::string& re) {
  std::string error;
  auto compiled = Regex::compile(re, error);
  if (!compiled) sink.add(at, path, "invalid regex \"" + re + "\" (RE2 syntax): " + error);
  return compiled;
}

void readStringMatch(ErrorSink& sink, const YAML::Node& n, const std::string& path,
                     StringMatch& out) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  int set = 0;
  if (r.get("exact").IsDefined()) {
    r.readString("exact", out.value);
    out.kind = StringMatchKind::kExact;
    ++set;
  }
  if (r.get("prefix").IsDefined()) {
    r.readString("prefix", out.value);
    out.kind = StringMatchKind::kPrefix;
    ++set;
  }
  if (r.get("regex").IsDefined()) {
    r.readString("regex", out.value);
    out.kind = StringMatchKind::kRegex;
    out.regex = compileRegex(sink, r.get("regex"), r.child("regex"), out.value);
    ++set;
  }
  if (r.get("present").IsDefined()) {
    bool present = true;
    r.readBool("present", present);
    if (!present) r.error("present", "only \"present: true\" is supported");
    out.kind = StringMatchKind::kPresent;
    ++set;
  }
  if (set != 1) sink.add(n, path, "expected exactly one of exact, prefix, regex, present");
}

void readMatchMap(MapReader& r, const std::string& key,
                  std::vector<std::pair<std::string, StringMatch>>& out, bool lowerNames) {
  YAML::Node m = r.get(key);
  if (!m.IsDefined() || m.IsNull()) return;
  if (!m.IsMap()) {
    r.sink().add(m, r.child(key), "expected a mapping of name to match");
    return;
  }
  for (const auto& kv : m) {
    std::string name = kv.first.Scalar();
    StringMatch sm;
    readStringMatch(r.sink(), kv.second, r.child(key) + "." + name, sm);
    out.emplace_back(lowerNames ? lower(name) : name, std::move(sm));
  }
}

bool readPercentage(MapReader& r, std::optional<double>& out, const std::string& key) {
  YAML::Node v = r.get(key);
  if (!v.IsDefined()) return true;
  std::string s;
  if (!asString(r.sink(), v, r.child(key), s)) return false;
  if (!s.empty() && s.back() == '%') s.pop_back();  // "10%" and 10 mean the same
  char* end = nullptr;
  double p = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || p < 0 || p > 100) {
    r.sink().add(v, r.child(key), "expected a number from 0 to 100");
    return false;
  }
  out = p;
  return true;
}

/// A plain number within [min, max].
bool readNumber(MapReader& r, const std::string& key, double& out, double min, double max) {
  YAML::Node v = r.get(key);
  if (!v.IsDefined()) return true;
  std::string s;
  if (!asString(r.sink(), v, r.child(key), s)) return false;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || d < min || d > max) {
    std::ostringstream msg;
    msg << "expected a number from " << min << " to " << max;
    r.sink().add(v, r.child(key), msg.str());
    return false;
  }
  out = d;
  return true;
}

void readRuleTarget(ErrorSink& sink, MapReader& spec, RuleTarget& out) {
  YAML::Node n = spec.get("target");
  if (!n.IsDefined() || n.IsNull()) return;
  MapReader t(sink, n, spec.child("target"));
  int dir = t.readEnum("direction", {"inbound", "outbound"});
  if (dir >= 0) out.direction = dir == 0 ? Direction::kInbound : Direction::kOutbound;
  t.readString("service", out.service);
  t.readString("route", out.route);
  t.readString("pathPrefix", out.pathPrefix);
}

void readFallback(ErrorSink& sink, MapReader& spec, FallbackReply& out) {
  YAML::Node n = spec.get("fallback");
  if (!n.IsDefined() || n.IsNull()) return;
  MapReader f(sink, n, spec.child("fallback"));
  uint32_t status = 0;
  if (f.get("status").IsDefined() && f.readUint("status", status, 100, 599)) {
    out.status = static_cast<int>(status);
  }
  f.readString("body", out.body);
  f.readStringMap("headers", out.headers);
}

/// `key: none | caller | source_ip | header:<name>`.
void readLimitKey(MapReader& spec, RateLimitKey& out) {
  std::string key = "none";
  if (!spec.readString("key", key)) return;
  if (key == "none") {
    out.kind = RateLimitKey::Kind::kNone;
  } else if (key == "caller") {
    out.kind = RateLimitKey::Kind::kCaller;
  } else if (key == "source_ip") {
    out.kind = RateLimitKey::Kind::kSourceIp;
  } else if (key.rfind("header:", 0) == 0 && key.size() > 7) {
    out.kind = RateLimitKey::Kind::kHeader;
    out.header = lower(key.substr(7));
  } else {
    spec.error("key",
               "invalid key \"" + key + "\" (expected none, caller, source_ip or header:<name>)");
  }
}

void readRouteMatch(ErrorSink& sink, const YAML::Node& n, const std::string& path, RouteMatch& out,
                    std::optional<double>* percentage) {
  MapReader r(sink, n, path);
  if (!r.ok()) return;
  if (percentage) readPercentage(r, *percentage);
  std::string s;
  if (r.get("path").IsDefined() && r.readString("path", s)) out.path = s;
  if (r.get("pathPrefix").IsDefined() && r.readString("pathPrefix", s)) out.pathPrefix = s;
  if (r.get("pathRegex").IsDefined() && r.readString("pathRegex", s)) {
    out.pathRegexText = s;
    out.pathRegex = compileRegex(sink, r.get("pathRegex"), r.child("pathRegex"), s);
  }
  if (int(out.path.has_value()) + int(out.pathPrefix.has_value()) +
          int(out.pathRegexText.has_value()) >
      1) {
    sink.add(n, path, "use only one of path, pathPrefix, pathRegex");
  }
  YAML::Node methods = r.get("methods");
  if (methods.IsDefined()) {
    r.readStringList("methods", out.methods);
  }
  YAML::Node method = r.get("method");
  if (method.IsDefined() && r.readString("method", s)) out.methods.push_back(s);
  for (auto& m : out.methods) {
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
  }
  readMatchMap(r, "headers", out.headers, true);
  readMatchMap(r, "queryParams", out.queryParams, false);
  readMatchMap(r, "cookies", out.cookies, false);
}

}  // namespace detail
}  // namespace tether::config
