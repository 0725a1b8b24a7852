#include "proxy/upstream/discovered_endpoints.h"

#include <algorithm>

namespace tether::proxy {

namespace {

bool sameEndpoint(const config::EndpointConfig& a, const config::EndpointConfig& b) {
  return a.address == b.address && a.weight == b.weight && a.labels == b.labels;
}

bool sameSet(const std::vector<config::EndpointConfig>& a,
             const std::vector<config::EndpointConfig>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), sameEndpoint);
}

}  // namespace

bool DiscoveredEndpoints::set(const std::string& service,
                              std::vector<config::EndpointConfig> endpoints) {
  for (auto& e : endpoints) e.addressText = e.address.toString();
  std::sort(endpoints.begin(), endpoints.end(),
            [](const auto& a, const auto& b) { return a.addressText < b.addressText; });
  auto it = byService_.find(service);
  if (it != byService_.end() && sameSet(it->second, endpoints)) return false;
  byService_[service] = std::move(endpoints);
  return true;
}

bool DiscoveredEndpoints::upsert(const std::string& service,
                                 const config::EndpointConfig& endpoint) {
  std::vector<config::EndpointConfig> next = byService_[service];
  auto it = std::find_if(next.begin(), next.end(),
                         [&](const auto& e) { return e.address == endpoint.address; });
  if (it != next.end()) {
    if (sameEndpoint(*it, endpoint)) return false;
    *it = endpoint;
  } else {
    next.push_back(endpoint);
  }
  return set(service, std::move(next));
}

bool DiscoveredEndpoints::remove(const std::string& service, const std::string& address) {
  auto it = byService_.find(service);
  if (it == byService_.end()) return false;
  auto& v = it->second;
  auto end =
      std::remove_if(v.begin(), v.end(), [&](const auto& e) { return e.addressText == address; });
  if (end == v.end()) return false;
  v.erase(end, v.end());
  return true;
}

bool DiscoveredEndpoints::erase(const std::string& service) {
  return byService_.erase(service) > 0;
}

std::shared_ptr<const config::Config> DiscoveredEndpoints::apply(
    std::shared_ptr<const config::Config> base) const {
  bool any = std::any_of(byService_.begin(), byService_.end(),
                         [&](const auto& kv) { return base->services.count(kv.first) > 0; });
  if (!any) return base;
  auto cfg = std::make_shared<config::Config>(*base);
  for (const auto& [name, endpoints] : byService_) {
    auto it = cfg->services.find(name);
    if (it != cfg->services.end()) it->second.endpoints = endpoints;
  }
  return cfg;
}

}  // namespace tether::proxy
