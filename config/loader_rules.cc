// Rule documents: the header every kind shares (apiVersion, kind, metadata, spec), the
// list of kinds and their readers (config/readers/), and the checks across documents.

#include <set>

#include "config/readers/readers.h"

namespace tether::config::detail {

namespace {

constexpr const char* kApiVersion = "tether.dev/v1alpha1";

struct RuleKind {
  const char* kind;
  RuleReader read;
};

/// Every native kind and its reader: the one list a new kind joins.
constexpr RuleKind kRuleKinds[] = {
    {"Service", readKind<&RuleSet::services, readServiceSpec>},
    {"Route", readKind<&RuleSet::routes, readRouteSpec>},
    {"TrafficLabel", readKind<&RuleSet::trafficLabels, readTrafficLabelSpec>},
    {"RateLimit", readKind<&RuleSet::rateLimits, readRateLimitSpec>},
    {"CircuitBreaker", readKind<&RuleSet::circuitBreakers, readCircuitBreakerSpec>},
    {"ConcurrencyLimit", readKind<&RuleSet::concurrencyLimits, readConcurrencyLimitSpec>},
    {"HmacAuth", readKind<&RuleSet::hmacAuths, readHmacAuthSpec>},
};

}  // namespace

void readRuleDocument(ErrorSink& sink, const YAML::Node& doc, RuleSet& rules) {
  if (doc.IsNull()) return;  // an empty document between two "---"
  MapReader r(sink, doc, "");
  if (!r.ok()) return;
  std::string apiVersion, kind, name;
  r.required("apiVersion");
  if (r.readString("apiVersion", apiVersion) && !apiVersion.empty() && apiVersion != kApiVersion &&
      apiVersion != kOpenSergoApiVersion) {
    r.error("apiVersion", "unsupported apiVersion \"" + apiVersion + "\" (expected " + kApiVersion +
                              " or " + kOpenSergoApiVersion + ")");
  }
  r.required("kind");
  r.readString("kind", kind);
  {
    MapReader m(sink, r.get("metadata"), "metadata");
    m.required("name");
    m.readString("name", name);
    Labels ignored;
    m.readStringMap("labels", ignored);
    std::string ns;
    m.readString("namespace", ns);
  }
  if (!r.get("metadata").IsDefined()) r.required("metadata");
  if (r.get("selector").IsDefined()) {
    // Which sidecars the reference control plane serves this document to; checked here,
    // used only there (control-plane.md).
    MapReader sel(sink, r.get("selector"), "selector");
    std::string service;
    Labels labels;
    sel.readString("service", service);
    sel.readStringMap("labels", labels);
  }
  YAML::Node specNode = r.get("spec");
  if (!specNode.IsDefined()) {
    r.required("spec");
    return;
  }
  MapReader spec(sink, specNode, "spec");
  if (!spec.ok()) return;
  DocumentInfo info{kind, name, originOf(sink, doc), "", YAML::Dump(doc)};
  info.hash = sha256Hex(info.yaml);
  for (const RuleKind& k : kRuleKinds) {
    if (kind != k.kind) continue;
    k.read(sink, spec, info, rules);
    rules.documents.push_back(std::move(info));
    return;
  }
  if (apiVersion == kOpenSergoApiVersion && readOpenSergoDocument(sink, kind, info, spec, rules)) {
    rules.documents.push_back(std::move(info));
    return;
  }
  if (!kind.empty()) {
    std::vector<std::string> kinds;
    for (const RuleKind& k : kRuleKinds) kinds.emplace_back(k.kind);
    std::string msg = "unknown kind \"" + kind + "\"";
    std::string hint = didYouMean(kind, kinds);
    if (!hint.empty()) {
      msg += " (did you mean \"" + hint + "\"?)";
    } else {
      std::string all;
      for (const auto& k : kinds) all += (all.empty() ? "" : ", ") + k;
      msg += " (supported: " + all + ")";
    }
    r.error("kind", msg);
    // Keys under spec are not checked for a kind we do not know.
    for (const auto& kv : specNode) spec.get(kv.first.Scalar());
    return;
  }
  rules.documents.push_back(std::move(info));
}

void readRuleSource(const Source& src, RuleSet& rules, ConfigErrors& errors) {
  ErrorSink sink(src.name, errors);
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(src.content);
    for (const auto& doc : docs) readRuleDocument(sink, doc, rules);
  } catch (const YAML::Exception& e) {
    sink.addAt(e.mark.line + 1, e.mark.column + 1, "", e.msg);
  }
}

void finishConfig(Config& cfg, RuleSet& rules, ConfigErrors& errors) {
  resolveOpenSergo(cfg.bootstrap, rules, errors);
  for (auto& s : rules.services) {
    if (s.name == kLocalAppService) {
      errors.push_back({s.origin.file, s.origin.line, s.origin.column, "metadata.name",
                        std::string("service name \"") + kLocalAppService + "\" is reserved"});
      continue;
    }
    auto [it, inserted] = cfg.services.emplace(s.name, s);
    if (!inserted) {
      errors.push_back({s.origin.file, s.origin.line, s.origin.column, "metadata.name",
                        "duplicate Service \"" + s.name + "\" (first defined at " +
                            it->second.origin.file + ":" + std::to_string(it->second.origin.line) +
                            ")"});
    }
  }
  // The local app is a service like any other, named kLocalAppService.
  ServiceConfig local;
  local.name = kLocalAppService;
  local.origin = Origin{"<bootstrap>", 0, 0};
  local.endpoints.push_back(EndpointConfig{
      cfg.bootstrap.localApp.address, cfg.bootstrap.localApp.address.toString(), 1, {}});
  cfg.services.emplace(local.name, local);

  std::set<std::string> routeNames;
  for (const auto& r : rules.routes) {
    if (!routeNames.insert(r.name).second) {
      errors.push_back({r.origin.file, r.origin.line, r.origin.column, "metadata.name",
                        "duplicate Route \"" + r.name + "\""});
    }
  }
  std::vector<std::string> known;
  for (const auto& [name, s] : cfg.services) known.push_back(name);
  for (const auto& ref : rules.serviceRefs) {
    if (cfg.services.count(ref.service)) continue;
    std::string msg = "unknown service \"" + ref.service + "\"";
    std::string hint = didYouMean(ref.service, known);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
    errors.push_back({ref.file, ref.at.line, ref.at.column, ref.path, msg});
  }
  for (const auto& l : cfg.bootstrap.listeners) {
    if (!l.tcpService.empty() && !cfg.services.count(l.tcpService)) {
      std::string hint = didYouMean(l.tcpService, known);
      errors.push_back({"<bootstrap>", 0, 0, "listeners." + l.name + ".tcpService",
                        "unknown service \"" + l.tcpService + "\"" +
                            (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)")});
    }
  }
  auto checkTarget = [&](const RuleTarget& t, const Origin& o, const std::string& kind,
                         const std::string& name) {
    if (!t.service.empty() && !cfg.services.count(t.service)) {
      std::string hint = didYouMean(t.service, known);
      errors.push_back({o.file, o.line, o.column, "spec.target.service",
                        kind + " " + name + ": unknown service \"" + t.service + "\"" +
                            (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)")});
    }
  };
  for (const auto& rl : rules.rateLimits) {
    checkTarget(rl.target, rl.origin, "RateLimit", rl.name);
    if (rl.global && !cfg.bootstrap.redis.address) {
      errors.push_back(
          {rl.origin.file, rl.origin.line, rl.origin.column, "spec.mode",
           "RateLimit " + rl.name + ": mode: global needs redis.address in the bootstrap"});
    }
  }
  for (const auto& cb : rules.circuitBreakers) {
    checkTarget(cb.target, cb.origin, "CircuitBreaker", cb.name);
  }
  for (const auto& c : rules.concurrencyLimits) {
    checkTarget(c.target, c.origin, "ConcurrencyLimit", c.name);
  }
  for (const auto& h : rules.hmacAuths) checkTarget(h.target, h.origin, "HmacAuth", h.name);
  cfg.hmacAuths = std::move(rules.hmacAuths);
  cfg.concurrencyLimits = std::move(rules.concurrencyLimits);
  cfg.rateLimits = std::move(rules.rateLimits);
  cfg.circuitBreakers = std::move(rules.circuitBreakers);
  cfg.routes = std::move(rules.routes);
  cfg.trafficLabels = std::move(rules.trafficLabels);
  cfg.documents = std::move(rules.documents);
}

}  // namespace tether::config::detail
