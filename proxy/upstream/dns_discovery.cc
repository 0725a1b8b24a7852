#include "proxy/upstream/dns_discovery.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>

#include "proxy/common/log.h"

namespace tether::proxy {

struct DnsDiscovery::Target {
  std::string service;
  config::Address name;
  config::Duration refresh;
  std::unique_ptr<Timer> timer;
  bool inFlight = false;
};

DnsDiscovery::DnsDiscovery(uv_loop_t* loop, DiscoveredEndpoints& endpoints,
                           std::function<void()> onChange)
    : loop_(loop), endpoints_(endpoints), onChange_(std::move(onChange)) {}

DnsDiscovery::~DnsDiscovery() = default;

void DnsDiscovery::update(const config::Config& config) {
  std::map<std::string, std::shared_ptr<Target>> next;
  for (const auto& [name, service] : config.services) {
    if (!service.dns) continue;
    auto it = targets_.find(name);
    if (it != targets_.end() && it->second->name == *service.dns &&
        it->second->refresh == service.dnsRefresh) {
      next[name] = it->second;
      continue;
    }
    auto t = std::make_shared<Target>();
    t->service = name;
    t->name = *service.dns;
    t->refresh = service.dnsRefresh;
    Target* raw = t.get();
    t->timer = std::make_unique<Timer>(loop_, [this, raw] { resolve(*raw); });
    t->timer->start(std::chrono::milliseconds(0), service.dnsRefresh);
    next[name] = t;
    endpoints_.erase(name);  // a new name starts from nothing
  }
  for (const auto& [name, target] : targets_) {
    if (!next.count(name)) endpoints_.erase(name);  // no longer a dns service
  }
  targets_ = std::move(next);
}

void DnsDiscovery::resolve(Target& t) {
  if (t.inFlight) return;  // a slow resolver: do not pile lookups up
  struct Req {
    uv_getaddrinfo_t req;
    DnsDiscovery* self;
    std::weak_ptr<Target> target;
  };
  auto* r = new Req{{}, this, targets_[t.service]};
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  t.inFlight = true;
  int rc = uv_getaddrinfo(
      loop_, &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* r = static_cast<Req*>(req->data);
        // The target may be gone (a reload removed it); then only clean up.
        if (auto target = r->target.lock()) r->self->onResolved(*target, status, res);
        uv_freeaddrinfo(res);
        delete r;
      },
      t.name.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    t.inFlight = false;
    delete r;
    TETHER_LOG(kWarn, "dns: " + t.service + ": " + uv_strerror(rc));
  }
}

void DnsDiscovery::onResolved(Target& t, int status, addrinfo* res) {
  t.inFlight = false;
  if (status != 0) {
    // Keep the last good answer: a resolver hiccup must not empty a service.
    TETHER_LOG(kWarn,
               "dns: " + t.service + ": resolving " + t.name.host + ": " + uv_strerror(status));
    return;
  }
  std::vector<config::EndpointConfig> found;
  std::string list;
  for (addrinfo* a = res; a; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN] = {0};
    if (a->ai_family == AF_INET) {
      uv_ip4_name(reinterpret_cast<sockaddr_in*>(a->ai_addr), ip, sizeof(ip));
    } else if (a->ai_family == AF_INET6) {
      uv_ip6_name(reinterpret_cast<sockaddr_in6*>(a->ai_addr), ip, sizeof(ip));
    } else {
      continue;
    }
    config::Address addr{ip, t.name.port};
    bool dup =
        std::any_of(found.begin(), found.end(), [&](const auto& e) { return e.address == addr; });
    if (dup) continue;
    found.push_back(config::EndpointConfig{addr, addr.toString(), 1, {}});
    list += (list.empty() ? "" : ", ") + addr.toString();
  }
  if (!endpoints_.set(t.service, std::move(found))) return;
  TETHER_LOG(kInfo, "dns: " + t.service + " (" + t.name.host + ") -> " + list);
  onChange_();
}

}  // namespace tether::proxy
