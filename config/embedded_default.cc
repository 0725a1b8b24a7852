#include "config/config.h"

namespace tether::config {

// docs/design.md, "Command line": the configuration `tether run` uses without -c. Ports
// follow Istio's.
const char* embeddedDefaultYaml() {
  return R"(admin: { address: 127.0.0.1:15000 }
workers: auto
listeners:
  - { name: outbound, address: 127.0.0.1:15001, direction: outbound, originalDestination: true }
  - { name: inbound,  address: 0.0.0.0:15006,  direction: inbound }
localApp:
  address: 127.0.0.1:8080
rules:
  files: [ "/etc/tether/rules/*.yaml" ]
drain: { timeout: 20s }
)";
}

}  // namespace tether::config
