#pragma once

#include <cstdint>
#include <string>

namespace tether::control {

/// What `tether inject` adds to a pod template (docs/deploy.md).
struct InjectOptions {
  std::string image = "tether:latest";      // sidecar and init container image
  std::string configMap = "tether-config";  // holds tether.yaml and rules-*.yaml
  uint32_t proxyUid = 1337;                 // Tether's user, exempt from interception
  uint32_t drainSeconds = 20;               // the bootstrap's drain.timeout
  uint16_t adminPort = 15000;               // probes and the Prometheus scrape
  std::string excludeInboundPorts;          // extra ports the init container leaves alone
  std::string excludeOutboundPorts;
};

struct InjectResult {
  std::string yaml;   // every input document, the workloads among them injected
  int injected = 0;   // pod templates changed
  int unchanged = 0;  // pod templates that already had Tether
  std::string error;  // a YAML syntax error (line:col: message); yaml is then empty
};

/// Adds the Tether sidecar to every pod template in `input` (Pod, Deployment, StatefulSet,
/// DaemonSet, ReplicaSet, Job, CronJob, and the items of a List), like `linkerd inject`:
/// the interception init container, Tether as a native sidecar (an init container with
/// restartPolicy: Always, so the app starts after it and Jobs complete), its config
/// volume, probes, Prometheus annotations and a grace period that covers the drain.
/// Other documents pass through. Injecting twice changes nothing.
InjectResult inject(const std::string& input, const InjectOptions& options);

}  // namespace tether::control
