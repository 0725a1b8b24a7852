// ErrorSink and MapReader: reading YAML maps with typed getters, unknown-key checks and
// errors at file:line:col.

#include "config/yaml_reader.h"

#include <algorithm>

#include "config/loader_internal.h"

namespace tether::config::detail {

void ErrorSink::add(const YAML::Node& at, const std::string& path, const std::string& message) {
  if (at.IsDefined()) {
    YAML::Mark m = at.Mark();
    addAt(m.line + 1, m.column + 1, path, message);
  } else {
    addAt(0, 0, path, message);
  }
}

void ErrorSink::addAt(int line, int column, const std::string& path, const std::string& message) {
  errors_.push_back(ConfigError{file_, line, column, path, message});
}

MapReader::MapReader(ErrorSink& sink, const YAML::Node& node, std::string path)
    : sink_(sink),
      node_(node.IsDefined() ? node : YAML::Node(YAML::NodeType::Undefined)),
      path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    sink_.add(node_, path_, "expected a mapping");
    ok_ = false;
  }
}

MapReader::~MapReader() {
  if (!ok_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    std::string key = kv.first.Scalar();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::string msg = "unknown key \"" + key + "\"";
    std::string hint = didYouMean(key, known_);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
    sink_.add(kv.first, path_, msg);
  }
}

std::string MapReader::child(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

FieldPosition MapReader::position(const std::string& key) {
  FieldPosition p{sink_.file(), 0, 0, child(key)};
  YAML::Node v = get(key);
  if (v.IsDefined()) {
    p.line = v.Mark().line + 1;
    p.column = v.Mark().column + 1;
  }
  return p;
}

YAML::Node MapReader::get(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
  if (!ok_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  // operator[] on a const node never inserts.
  const YAML::Node& cn = node_;
  YAML::Node v = cn[key];
  // A missing key yields an "invalid" node that throws on most calls; hand out a plain
  // undefined node instead so callers only ever test IsDefined().
  if (!v.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return v;
}

void MapReader::error(const std::string& key, const std::string& message) {
  YAML::Node v = get(key);
  sink_.add(v.IsDefined() ? v : node_, child(key), message);
}

void MapReader::required(const std::string& key) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) sink_.add(node_, child(key), "is required");
}

bool asString(ErrorSink& sink, const YAML::Node& n, const std::string& path, std::string& out) {
  if (!n.IsScalar()) {
    sink.add(n, path, "expected a string");
    return false;
  }
  out = n.Scalar();
  return true;
}

bool asDuration(ErrorSink& sink, const YAML::Node& n, const std::string& path, Duration& out) {
  std::string text;
  if (!asString(sink, n, path, text)) return false;
  auto d = parseDuration(text);
  if (!d) {
    sink.add(n, path, "invalid duration \"" + text + "\" (use e.g. 300ms, 10s, 1m)");
    return false;
  }
  out = *d;
  return true;
}

bool MapReader::readString(const std::string& key, std::string& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  return asString(sink_, v, child(key), out);
}

bool MapReader::readBool(const std::string& key, bool& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  const std::string& s = v.IsScalar() ? v.Scalar() : std::string();
  if (s == "true") {
    out = true;
  } else if (s == "false") {
    out = false;
  } else {
    sink_.add(v, child(key), "expected true or false");
    return false;
  }
  return true;
}

bool MapReader::readUint(const std::string& key, uint32_t& out, uint32_t min, uint32_t max) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  std::string s = v.IsScalar() ? v.Scalar() : std::string();
  bool digits = !s.empty() && s.size() <= 10 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  uint64_t n = digits ? std::stoull(s) : 0;
  if (!digits || n < min || n > max) {
    sink_.add(v, child(key),
              "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return false;
  }
  out = static_cast<uint32_t>(n);
  return true;
}

bool MapReader::readDuration(const std::string& key, Duration& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  return asDuration(sink_, v, child(key), out);
}

bool MapReader::readAddress(const std::string& key, Address& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  std::string s;
  if (!asString(sink_, v, child(key), s)) return false;
  auto a = parseAddress(s);
  if (!a) {
    sink_.add(v, child(key), "invalid address \"" + s + "\" (expected ip:port)");
    return false;
  }
  out = *a;
  return true;
}

bool MapReader::readStringList(const std::string& key, std::vector<std::string>& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  if (!v.IsSequence()) {
    sink_.add(v, child(key), "expected a list");
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string s;
    if (asString(sink_, v[i], child(key) + "[" + std::to_string(i) + "]", s)) {
      out.push_back(s);
    } else {
      ok = false;
    }
  }
  return ok;
}

bool MapReader::readStringMap(const std::string& key, std::map<std::string, std::string>& out) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return true;
  if (!v.IsMap()) {
    sink_.add(v, child(key), "expected a mapping");
    return false;
  }
  bool ok = true;
  for (const auto& kv : v) {
    std::string s;
    if (asString(sink_, kv.second, child(key) + "." + kv.first.Scalar(), s)) {
      out[kv.first.Scalar()] = s;
    } else {
      ok = false;
    }
  }
  return ok;
}

int MapReader::readEnum(const std::string& key, std::initializer_list<const char*> choices) {
  YAML::Node v = get(key);
  if (!v.IsDefined() || v.IsNull()) return -1;
  std::string s;
  if (!asString(sink_, v, child(key), s)) return -1;
  int i = 0;
  std::string list;
  for (const char* c : choices) {
    if (s == c) return i;
    list += (i ? " | " : "") + std::string(c);
    ++i;
  }
  sink_.add(v, child(key), "invalid value \"" + s + "\" (expected " + list + ")");
  return -1;
}

}  // namespace tether::config::detail
