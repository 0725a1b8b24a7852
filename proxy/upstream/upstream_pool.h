#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/address.h"
#include "config/rules.h"
#include "proxy/upstream/upstream.h"

namespace tether::proxy {

class Worker;
class UpstreamPool;
class Http2Pool;

/// All of a worker's pools, by endpoint address. Pools outlive snapshots: a reload that
/// keeps an endpoint keeps its warm connections.
class UpstreamPools {
 public:
  explicit UpstreamPools(Worker& worker);
  ~UpstreamPools();
  /// The pool for `address`; `key` is address.toString(), precomputed by the caller.
  /// `tls`: the service's TLS origination settings (pools differ by them and by the ALPN
  /// list offered). nullptr when the TLS context cannot be built (the error is logged).
  UpstreamPool* get(const config::Address& address, std::string_view key,
                    const config::TlsClientConfig* tls = nullptr);
  /// The HTTP/2 pool for `address`. `alpn` "h2,http/1.1" makes a probing pool (protocol:
  /// auto): its connections record what the endpoint chose (negotiatedHttp2).
  Http2Pool* getHttp2(const config::Address& address, std::string_view key,
                      const config::TlsClientConfig* tls = nullptr, std::string_view alpn = "h2");
  /// Lends an exchange with the endpoint `address` (`key`, its address.toString()) in the
  /// protocol the service speaks: HTTP/1.1, HTTP/2, or for `auto` what ALPN chose there
  /// (the first TLS connection offers both; plaintext is HTTP/1.1). `http1Only` forces an
  /// HTTP/1.1 exchange (upgrades and CONNECT tunnels). As UpstreamPool::acquire otherwise;
  /// `queuedAt` is set to the pool whose line the request waits in (kQueued), and `http2`
  /// tells which codec the exchange uses.
  UpstreamRequest* lend(UpstreamClient& client, const config::Address& address,
                        std::string_view key, config::Protocol protocol,
                        const config::TlsClientConfig* tls, const LendOptions& options, Lent& how,
                        UpstreamPool** queuedAt = nullptr, bool* http2 = nullptr);
  /// What ALPN chose at the endpoint `key` for `protocol: auto` (nullopt: not known yet).
  std::optional<bool> negotiatedHttp2(std::string_view key) const;
  void setNegotiatedHttp2(std::string_view key, bool h2);
  void closeAll();
  /// Forgets the pools that hold no connection and no waiting request (an endpoint gone
  /// from the config, a passthrough destination seen once), so that the set of addresses
  /// ever contacted does not grow memory for good. Returns how many went.
  size_t prune();
  /// Requests in flight to the endpoint `key` on this worker (every protocol and TLS kind).
  uint32_t active(std::string_view key) const;
  /// Connections (open, idle) to each endpoint on this worker.
  std::map<std::string, std::pair<size_t, size_t>> connectionCounts() const;

 private:
  Worker& worker_;
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  /// Pools for one address, by TLS identity ("" for plaintext) and ALPN list: a few at
  /// most, so a vector.
  template <class Pool>
  struct Variant {
    std::string tlsId;
    std::string_view alpn;  // a literal
    std::unique_ptr<Pool> pool;
  };
  template <class Pool>
  using ByTls = std::vector<Variant<Pool>>;
  template <class Pool>
  using Map = std::unordered_map<std::string, ByTls<Pool>, KeyHash, std::equal_to<>>;
  template <class Pool>
  Pool* find(Map<Pool>& map, const config::Address& address, std::string_view key,
             const config::TlsClientConfig* tls, std::string_view alpn);
  Map<UpstreamPool> pools_;
  Map<Http2Pool> http2_;
  std::unordered_map<std::string, bool, KeyHash, std::equal_to<>> negotiated_;
};

}  // namespace tether::proxy
