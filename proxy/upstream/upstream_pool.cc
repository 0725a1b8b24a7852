#include "proxy/upstream/upstream_pool.h"

#include "proxy/common/log.h"
#include "proxy/upstream/http1_client.h"
#include "proxy/upstream/http2_client.h"

namespace tether::proxy {

template <class Pool>
Pool* UpstreamPools::find(Map<Pool>& map, const config::Address& address, std::string_view key,
                          const config::TlsClientConfig* tls, std::string_view alpn) {
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace(std::string(key), ByTls<Pool>()).first;
  std::string_view id = tls ? std::string_view(tls->id) : std::string_view();
  for (auto& v : it->second) {
    if (v.tlsId == id && (!tls || v.alpn == alpn)) return v.pool.get();
  }
  std::shared_ptr<TlsContextSlot> slot;
  if (tls) {
    // Contexts are built on the control loop when a config is loaded; this finds them.
    std::string error;
    slot = worker_.tls().client(*tls, alpn, error);
    if (!slot) {
      TETHER_LOG(kError, "upstream " + std::string(key) + ": " + error);
      return nullptr;
    }
  }
  std::string serverName = tls && !tls->sni.empty() ? tls->sni : address.host;
  it->second.push_back(
      Variant<Pool>{std::string(id), alpn,
                    std::make_unique<Pool>(worker_, UpstreamTarget(address, slot, serverName))});
  Pool* pool = it->second.back().pool.get();
  if constexpr (std::is_same_v<Pool, Http2Pool>) {
    if (alpn.find(',') != std::string_view::npos) pool->setProbe(it->first);
  }
  return pool;
}

UpstreamPool* UpstreamPools::get(const config::Address& address, std::string_view key,
                                 const config::TlsClientConfig* tls) {
  return find(pools_, address, key, tls, "http/1.1");
}

UpstreamPools::UpstreamPools(Worker& worker) : worker_(worker) {}

UpstreamPools::~UpstreamPools() = default;

Http2Pool* UpstreamPools::getHttp2(const config::Address& address, std::string_view key,
                                   const config::TlsClientConfig* tls, std::string_view alpn) {
  return find(http2_, address, key, tls, alpn);
}

size_t UpstreamPools::prune() {
  size_t gone = 0;
  auto sweep = [&gone](auto& map, auto emptyPool) {
    for (auto it = map.begin(); it != map.end();) {
      auto& variants = it->second;
      size_t before = variants.size();
      std::erase_if(variants, [&](const auto& v) { return emptyPool(*v.pool); });
      gone += before - variants.size();
      it = variants.empty() ? map.erase(it) : std::next(it);
    }
  };
  sweep(pools_, [](const UpstreamPool& p) { return p.connectionCount() == 0 && p.queued() == 0; });
  sweep(http2_, [](const Http2Pool& p) { return p.connectionCount() == 0; });
  return gone;
}

UpstreamRequest* UpstreamPools::lend(UpstreamClient& client, const config::Address& address,
                                     std::string_view key, config::Protocol protocol,
                                     const config::TlsClientConfig* tls, const LendOptions& options,
                                     Lent& how, UpstreamPool** queuedAt, bool* http2) {
  std::string_view alpn = "h2";
  if (protocol == config::Protocol::kAuto) {
    // ALPN decides over TLS: the first connection offers both and remembers the answer.
    // Without TLS there is nothing to negotiate: HTTP/1.1.
    std::optional<bool> h2 = tls ? negotiatedHttp2(key) : std::optional<bool>(false);
    if (!h2) alpn = "h2,http/1.1";
    protocol = h2.value_or(true) ? config::Protocol::kHttp2 : config::Protocol::kHttp1;
  }
  how = Lent::kFailed;
  bool useHttp2 = protocol == config::Protocol::kHttp2 && !options.http1Only;
  if (http2) *http2 = useHttp2;
  if (useHttp2) {
    Http2Pool* pool = getHttp2(address, key, tls, alpn);
    return pool ? pool->acquire(client, options.headRequest, options.connectTimeout, options.budget,
                                how)
                : nullptr;
  }
  UpstreamPool* pool = get(address, key, tls);
  if (!pool) return nullptr;
  UpstreamRequest* lent =
      pool->acquire(client, options.headRequest, options.connectTimeout, options.budget, how);
  if (how == Lent::kQueued && queuedAt) *queuedAt = pool;
  return lent;
}

std::optional<bool> UpstreamPools::negotiatedHttp2(std::string_view key) const {
  auto it = negotiated_.find(key);
  if (it == negotiated_.end()) return std::nullopt;
  return it->second;
}

void UpstreamPools::setNegotiatedHttp2(std::string_view key, bool h2) {
  auto it = negotiated_.find(key);
  if (it == negotiated_.end()) it = negotiated_.emplace(std::string(key), h2).first;
  it->second = h2;
}

uint32_t UpstreamPools::active(std::string_view key) const {
  uint32_t n = 0;
  if (auto it = pools_.find(key); it != pools_.end()) {
    for (const auto& v : it->second) n += v.pool->connectionCount() - v.pool->idleCount();
  }
  if (auto it = http2_.find(key); it != http2_.end()) {
    for (const auto& v : it->second) n += v.pool->activeStreams();
  }
  return n;
}

std::map<std::string, std::pair<size_t, size_t>> UpstreamPools::connectionCounts() const {
  std::map<std::string, std::pair<size_t, size_t>> out;
  for (const auto& [key, set] : pools_) {
    for (const auto& v : set) {
      out[key].first += v.pool->connectionCount();
      out[key].second += v.pool->idleCount();
    }
  }
  for (const auto& [key, set] : http2_) {
    for (const auto& v : set) out[key].first += v.pool->connectionCount();
  }
  return out;
}

void UpstreamPools::closeAll() {
  for (auto& [key, set] : pools_) {
    for (auto& v : set) v.pool->closeAll();
  }
  for (auto& [key, set] : http2_) {
    for (auto& v : set) v.pool->closeAll();
  }
}

}  // namespace tether::proxy
