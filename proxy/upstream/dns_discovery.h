#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/common/timer.h"
#include "proxy/upstream/discovered_endpoints.h"

namespace tether::proxy {

/// Endpoints from DNS for services with `dns: name:port`, resolved on the control loop with
/// uv_getaddrinfo (libuv's threadpool: the loop never blocks) every `dnsRefresh`, and
/// written into `endpoints`. When a service's address set changes, `onChange` runs;
/// unchanged answers cost nothing.
class DnsDiscovery {
 public:
  DnsDiscovery(uv_loop_t* loop, DiscoveredEndpoints& endpoints, std::function<void()> onChange);
  ~DnsDiscovery();

  /// Starts or stops resolution to match `config`'s dns services.
  void update(const config::Config& config);

 private:
  struct Target;
  void resolve(Target& t);
  void onResolved(Target& t, int status, struct addrinfo* res);

  uv_loop_t* loop_;
  DiscoveredEndpoints& endpoints_;
  std::function<void()> onChange_;
  std::map<std::string, std::shared_ptr<Target>> targets_;
};

}  // namespace tether::proxy
