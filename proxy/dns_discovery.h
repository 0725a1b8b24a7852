#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/timer.h"

namespace tether::proxy {

/// Endpoints from DNS for services with `dns: name:port`, resolved on the control loop with
/// uv_getaddrinfo (libuv's threadpool: the loop never blocks) every `dnsRefresh`. When a
/// service's address set changes, `onChange` runs; unchanged answers cost nothing.
class DnsDiscovery {
 public:
  DnsDiscovery(uv_loop_t* loop, std::function<void()> onChange);
  ~DnsDiscovery();

  /// Starts or stops resolution to match `config`'s dns services.
  void update(const config::Config& config);
  /// The current addresses per service (sorted, unique); absent until first resolved.
  const std::map<std::string, std::vector<config::Address>>& results() const { return results_; }
  /// `base` with every dns service's endpoints filled in from results().
  std::shared_ptr<const config::Config> apply(std::shared_ptr<const config::Config> base) const;

 private:
  struct Target;
  void resolve(Target& t);
  void onResolved(Target& t, int status, struct addrinfo* res);

  uv_loop_t* loop_;
  std::function<void()> onChange_;
  std::map<std::string, std::shared_ptr<Target>> targets_;
  std::map<std::string, std::vector<config::Address>> results_;
};

}  // namespace tether::proxy
