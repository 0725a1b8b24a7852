#include "control/inject.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string_view>
#include <vector>

namespace tether::control {

namespace {

constexpr const char* kInjectedAnnotation = "tether.dev/injected";
constexpr const char* kOptOutAnnotation = "tether.dev/inject";  // "disabled" opts out
constexpr const char* kVolume = "tether-config";
constexpr const char* kDefaultExcludedInbound = "15000,15001,15006,15021,22";

/// A string scalar that must stay a string (quoted on output): "true", "15000".
YAML::Node quoted(const std::string& value) {
  YAML::Node n(value);
  n.SetTag("!");
  return n;
}

YAML::Node plain(const std::string& value) { return YAML::Node(value); }

YAML::Node list(std::initializer_list<YAML::Node> items) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const auto& i : items) n.push_back(i);
  return n;
}

YAML::Node httpProbe(const char* path, uint16_t port, int period, int failures) {
  YAML::Node p;
  p["httpGet"]["path"] = path;
  p["httpGet"]["port"] = static_cast<int>(port);
  p["periodSeconds"] = period;
  p["failureThreshold"] = failures;
  return p;
}

YAML::Node initContainer(const InjectOptions& o) {
  std::string inbound = kDefaultExcludedInbound;
  if (o.adminPort != 15000) inbound += "," + std::to_string(o.adminPort);
  if (!o.excludeInboundPorts.empty()) inbound += "," + o.excludeInboundPorts;
  YAML::Node c;
  c["name"] = "tether-init";
  c["image"] = o.image;
  c["command"] = list({plain("/usr/local/bin/tether-iptables")});
  YAML::Node args = list({plain("--proxy-uid"), quoted(std::to_string(o.proxyUid)),
                          plain("--exclude-inbound-ports"), quoted(inbound)});
  if (!o.excludeOutboundPorts.empty()) {
    args.push_back(plain("--exclude-outbound-ports"));
    args.push_back(quoted(o.excludeOutboundPorts));
  }
  c["args"] = args;
  YAML::Node sc;
  sc["runAsUser"] = 0;
  sc["runAsNonRoot"] = false;
  sc["allowPrivilegeEscalation"] = false;
  sc["capabilities"]["add"] = list({plain("NET_ADMIN"), plain("NET_RAW")});
  sc["capabilities"]["drop"] = list({plain("ALL")});
  c["securityContext"] = sc;
  return c;
}

YAML::Node sidecar(const InjectOptions& o) {
  YAML::Node c;
  c["name"] = "tether";
  c["image"] = o.image;
  // A native sidecar: started before the app containers, stopped after them.
  c["restartPolicy"] = "Always";
  c["args"] = list({plain("run"), plain("-c"), plain("/etc/tether/tether.yaml")});
  YAML::Node ports(YAML::NodeType::Sequence);
  for (auto [name, port] : {std::pair<const char*, int>{"tether-admin", o.adminPort},
                            {"tether-outbound", 15001},
                            {"tether-inbound", 15006}}) {
    YAML::Node p;
    p["name"] = name;
    p["containerPort"] = port;
    ports.push_back(p);
  }
  c["ports"] = ports;
  // /live, not /ready: /ready waits for the app, which only starts once this succeeds.
  c["startupProbe"] = httpProbe("/live", o.adminPort, 1, 30);
  c["readinessProbe"] = httpProbe("/ready", o.adminPort, 2, 2);
  c["livenessProbe"] = httpProbe("/live", o.adminPort, 10, 3);
  // Endpoint removal reaches the other sidecars before this one starts draining.
  c["lifecycle"]["preStop"]["exec"]["command"] = list({plain("/bin/sleep"), quoted("5")});
  YAML::Node sc;
  sc["runAsUser"] = static_cast<int64_t>(o.proxyUid);
  sc["runAsGroup"] = static_cast<int64_t>(o.proxyUid);
  sc["runAsNonRoot"] = true;
  sc["allowPrivilegeEscalation"] = false;
  sc["readOnlyRootFilesystem"] = true;
  sc["capabilities"]["drop"] = list({plain("ALL")});
  c["securityContext"] = sc;
  YAML::Node mount;
  mount["name"] = kVolume;
  mount["mountPath"] = "/etc/tether";
  mount["readOnly"] = true;
  c["volumeMounts"] = list({mount});
  c["resources"]["requests"]["cpu"] = "50m";
  c["resources"]["requests"]["memory"] = "32Mi";
  return c;
}

bool hasContainerNamed(const YAML::Node& containers, std::string_view name) {
  if (!containers.IsSequence()) return false;
  for (const auto& c : containers) {
    if (c.IsMap() && c["name"] && c["name"].IsScalar() && c["name"].Scalar() == name) return true;
  }
  return false;
}

/// Adds Tether to one pod template (metadata + spec). Returns false when it already had it
/// or opted out.
bool injectTemplate(YAML::Node tpl, const InjectOptions& o) {
  YAML::Node meta = tpl["metadata"];
  if (meta.IsMap() && meta["annotations"].IsMap()) {
    const YAML::Node& a = meta["annotations"];
    if (a[kInjectedAnnotation]) return false;
    if (a[kOptOutAnnotation] && a[kOptOutAnnotation].IsScalar() &&
        a[kOptOutAnnotation].Scalar() == "disabled") {
      return false;
    }
  }
  YAML::Node spec = tpl["spec"];
  if (!spec.IsMap()) return false;
  if (hasContainerNamed(spec["initContainers"], "tether") ||
      hasContainerNamed(spec["containers"], "tether")) {
    return false;
  }
  // Flow maps would turn the additions into one long line.
  tpl["metadata"].SetStyle(YAML::EmitterStyle::Block);
  YAML::Node annotations = tpl["metadata"]["annotations"];
  annotations.SetStyle(YAML::EmitterStyle::Block);
  annotations[kInjectedAnnotation] = quoted("true");
  annotations["prometheus.io/scrape"] = quoted("true");
  annotations["prometheus.io/port"] = quoted(std::to_string(o.adminPort));
  annotations["prometheus.io/path"] = "/metrics";
  const YAML::Node containers = spec["containers"];
  if (containers.IsSequence() && containers.size() > 0 && containers[0]["name"] &&
      !annotations["kubectl.kubernetes.io/default-container"]) {
    // kubectl logs/exec keep meaning the app, not the first (init) container.
    annotations["kubectl.kubernetes.io/default-container"] = containers[0]["name"].Scalar();
  }

  YAML::Node inits(YAML::NodeType::Sequence);
  inits.push_back(initContainer(o));
  inits.push_back(sidecar(o));
  if (spec["initContainers"].IsSequence()) {
    for (const auto& c : spec["initContainers"]) inits.push_back(c);
  }
  spec["initContainers"] = inits;

  YAML::Node volume;
  volume["name"] = kVolume;
  volume["configMap"]["name"] = o.configMap;
  if (!spec["volumes"].IsSequence()) spec["volumes"] = YAML::Node(YAML::NodeType::Sequence);
  spec["volumes"].push_back(volume);

  // The grace period covers the preStop sleep, the drain and a margin.
  int64_t need = 5 + static_cast<int64_t>(o.drainSeconds) + 5;
  int64_t current = 30;  // Kubernetes' default
  if (spec["terminationGracePeriodSeconds"]) {
    try {
      current = spec["terminationGracePeriodSeconds"].as<int64_t>();
    } catch (const YAML::Exception&) {
    }
  }
  if (current < need || !spec["terminationGracePeriodSeconds"]) {
    spec["terminationGracePeriodSeconds"] = std::max(current, need);
  }
  return true;
}

/// The pod template of a workload document, or an undefined node.
YAML::Node podTemplate(YAML::Node doc) {
  if (!doc.IsMap() || !doc["kind"] || !doc["kind"].IsScalar()) return YAML::Node();
  const std::string kind = doc["kind"].Scalar();
  if (kind == "Pod") return doc;
  static const std::vector<std::string> kWorkloads = {"Deployment", "StatefulSet", "DaemonSet",
                                                      "ReplicaSet", "Job"};
  if (std::find(kWorkloads.begin(), kWorkloads.end(), kind) != kWorkloads.end()) {
    if (doc["spec"].IsMap() && doc["spec"]["template"].IsMap()) return doc["spec"]["template"];
  }
  if (kind == "CronJob" && doc["spec"].IsMap() && doc["spec"]["jobTemplate"].IsMap() &&
      doc["spec"]["jobTemplate"]["spec"].IsMap() &&
      doc["spec"]["jobTemplate"]["spec"]["template"].IsMap()) {
    return doc["spec"]["jobTemplate"]["spec"]["template"];
  }
  return YAML::Node();
}

void injectDocument(YAML::Node doc, const InjectOptions& o, InjectResult& r) {
  if (doc.IsMap() && doc["kind"] && doc["kind"].IsScalar() && doc["kind"].Scalar() == "List" &&
      doc["items"].IsSequence()) {
    for (auto item : doc["items"]) injectDocument(item, o, r);
    return;
  }
  YAML::Node tpl = podTemplate(doc);
  if (!tpl.IsDefined() || !tpl.IsMap()) return;
  if (injectTemplate(tpl, o)) {
    r.injected++;
  } else {
    r.unchanged++;
  }
}

/// Emits `n` keeping what yaml-cpp's own emitter loses: quoted strings stay quoted ("true"
/// must not become a boolean), multi-line strings become literal blocks, flow collections
/// stay flow.
void emit(YAML::Emitter& out, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      if (n.Style() == YAML::EmitterStyle::Flow) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& kv : n) {
        out << YAML::Key;
        emit(out, kv.first);
        out << YAML::Value;
        emit(out, kv.second);
      }
      out << YAML::EndMap;
      break;
    case YAML::NodeType::Sequence:
      if (n.Style() == YAML::EmitterStyle::Flow) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : n) emit(out, item);
      out << YAML::EndSeq;
      break;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (s.find('\n') != std::string::npos && s.back() == '\n') {
        out << YAML::Literal << s;
      } else if (n.Tag() == "!") {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      break;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out << YAML::Null;
      break;
  }
}

}  // namespace

InjectResult inject(const std::string& input, const InjectOptions& options) {
  InjectResult r;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(input);
  } catch (const YAML::ParserException& e) {
    r.error =
        std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg;
    return r;
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    injectDocument(docs[i], options, r);
    YAML::Emitter out;
    out.SetIndent(2);
    out.SetSeqFormat(YAML::Block);
    emit(out, docs[i]);
    if (i > 0) r.yaml += "---\n";
    r.yaml += out.c_str();
    r.yaml += "\n";
  }
  return r;
}

}  // namespace tether::control
