// HmacAuth: keys, verification or signing, authorization rules.

#include <algorithm>

#include "config/readers/readers.h"

namespace tether::config::detail {

namespace {

void readAuthzRules(ErrorSink& sink, MapReader& spec, const std::string& key,
                    std::vector<AuthzRule>& out) {
  YAML::Node list = spec.get(key);
  if (!list.IsDefined() || list.IsNull()) return;
  if (!list.IsSequence()) {
    spec.error(key, "must be a list of { caller, pathPrefix, methods }");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    MapReader r(sink, list[i], spec.child(key) + "[" + std::to_string(i) + "]");
    if (!r.ok()) continue;
    AuthzRule rule;
    r.readString("caller", rule.caller);
    r.readString("pathPrefix", rule.pathPrefix);
    r.readStringList("methods", rule.methods);
    for (auto& m : rule.methods) {
      std::transform(m.begin(), m.end(), m.begin(),
                     [](unsigned char c) { return std::toupper(c); });
    }
    out.push_back(std::move(rule));
  }
}

}  // namespace

void readHmacAuthSpec(ErrorSink& sink, MapReader& spec, HmacAuthConfig& out, RuleSet&) {
  int dir = spec.readEnum("direction", {"inbound", "outbound"});
  if (dir >= 0) out.direction = static_cast<Direction>(dir);
  readRuleTarget(sink, spec, out.target);
  out.target.direction = out.direction;
  if (!spec.get("peers").IsDefined()) spec.required("keys");
  YAML::Node keys = spec.get("keys");
  if (keys.IsDefined() && !keys.IsSequence()) spec.error("keys", "must be a list of keys");
  if (keys.IsSequence()) {
    if (keys.size() == 0 && !spec.get("peers").IsDefined()) {
      spec.error("keys", "needs at least one key");
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      MapReader k(sink, keys[i], spec.child("keys") + "[" + std::to_string(i) + "]");
      if (!k.ok()) continue;
      HmacKeyConfig key;
      k.required("id");
      k.required("secretFile");
      k.readString("id", key.id);
      k.readString("caller", key.caller);
      k.readString("secretFile", key.secretFile);
      key.secretAt = k.position("secretFile");
      if (key.id.empty() || key.id.find_first_of(" ,=\"") != std::string::npos) {
        k.error("id", "must be non-empty, without spaces, commas, '=' or quotes");
      }
      if (out.direction == Direction::kInbound && key.caller.empty()) k.required("caller");
      for (const auto& other : out.keys) {
        if (other.id == key.id) k.error("id", "duplicate key id \"" + key.id + "\"");
      }
      out.keys.push_back(std::move(key));
    }
  }
  YAML::Node peers = spec.get("peers");
  if (peers.IsDefined() && !peers.IsSequence()) spec.error("peers", "must be a list");
  if (peers.IsSequence()) {
    for (size_t i = 0; i < peers.size(); ++i) {
      MapReader p(sink, peers[i], spec.child("peers") + "[" + std::to_string(i) + "]");
      if (!p.ok()) continue;
      HmacAuthConfig::Peer peer;
      p.required("identity");
      p.required("caller");
      p.readString("identity", peer.identity);
      p.readString("caller", peer.caller);
      out.peers.push_back(std::move(peer));
    }
    if (out.direction == Direction::kOutbound && !out.peers.empty()) {
      spec.error("peers", "peer identities apply to direction: inbound");
    }
  }
  if (spec.get("keyId").IsDefined() && spec.readString("keyId", out.keyId)) {
    bool found = false;
    for (const auto& k : out.keys) found = found || k.id == out.keyId;
    if (!found) spec.error("keyId", "no key with id \"" + out.keyId + "\" in keys");
  }
  spec.readDuration("clockSkew", out.clockSkew);
  if (out.clockSkew.count() < 1000) spec.error("clockSkew", "must be at least 1s");
  spec.readStringList("signedHeaders", out.signedHeaders);
  for (auto& h : out.signedHeaders) h = lower(h);
  spec.readUint("maxBodyBytes", out.maxBodyBytes, 0, 64 * 1024 * 1024);
  spec.readBool("allowUnsignedPayload", out.allowUnsignedPayload);
  spec.readBool("forwardCredentials", out.forwardCredentials);
  spec.readUint("nonceCacheSize", out.nonceCacheSize, 16, 100'000'000);
  readAuthzRules(sink, spec, "allow", out.allow);
  readAuthzRules(sink, spec, "deny", out.deny);
  if (out.direction == Direction::kOutbound && (!out.allow.empty() || !out.deny.empty())) {
    spec.error(out.allow.empty() ? "deny" : "allow", "authorization applies to direction: inbound");
  }
}

}  // namespace tether::config::detail
