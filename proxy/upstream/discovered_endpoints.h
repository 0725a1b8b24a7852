#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace tether::proxy {

/// Endpoints learned at run time (EDS-like), per service, layered over the loaded rules:
/// DNS answers today, the control plane's pushes later. Control thread only. A service with
/// an entry here serves exactly these endpoints (with their labels and weights) instead of
/// the ones in its rule document.
class DiscoveredEndpoints {
 public:
  /// Replaces `service`'s endpoints. Returns false when nothing changed (same set, same
  /// labels and weights), so callers publish a snapshot only on real changes.
  bool set(const std::string& service, std::vector<config::EndpointConfig> endpoints);
  /// Adds or updates one endpoint (matched by address); false when nothing changed.
  bool upsert(const std::string& service, const config::EndpointConfig& endpoint);
  /// Removes one endpoint by address; false when it was not there.
  bool remove(const std::string& service, const std::string& address);
  /// Forgets a service's discovered endpoints (its rule document's apply again).
  bool erase(const std::string& service);
  bool has(const std::string& service) const { return byService_.count(service) > 0; }

  /// `base` with the discovered endpoints applied to the services it defines; `base`
  /// itself when nothing applies. The result shares nothing mutable with this object.
  std::shared_ptr<const config::Config> apply(std::shared_ptr<const config::Config> base) const;

 private:
  std::map<std::string, std::vector<config::EndpointConfig>> byService_;
};

}  // namespace tether::proxy
