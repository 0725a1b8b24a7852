#pragma once

#include <netinet/in.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/address.h"
#include "config/rules.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/common/timer.h"
#include "proxy/network/connection.h"
#include "proxy/network/tls.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

class UpstreamPool;
class UpstreamRequest;
class Http2Pool;

/// Where a pool's connections go (HTTP/1.1 or HTTP/2): the endpoint and, for a TLS service,
/// the context and the name its certificate must carry.
class UpstreamTarget {
 public:
  UpstreamTarget(const config::Address& address, std::shared_ptr<TlsContextSlot> tls,
                 std::string serverName);
  const config::Address& address() const { return address_; }
  /// nullptr when the address is not a numeric IP (no connection can be made).
  const ::sockaddr* socketAddress() const {
    return valid_ ? reinterpret_cast<const ::sockaddr*>(&sockaddr_) : nullptr;
  }
  /// Arms TLS on a connection about to connect, when the service uses it.
  void prepare(TcpConnection& conn) const;

 private:
  config::Address address_;
  sockaddr_storage sockaddr_{};
  bool valid_ = false;
  std::shared_ptr<TlsContextSlot> tls_;
  std::string serverName_;
};

/// A service's connection budget (`limits.maxConnections`), all workers together. Like
/// Envoy's, it is soft in one way: a pool with no connection at all may open one over the
/// budget, so a worker is never left unable to reach an endpoint (the excess is bounded by
/// endpoints x workers).
struct ConnectionBudget {
  std::shared_ptr<std::atomic<int64_t>> open;  // connections open to the service
  int64_t max = 0;

  /// Takes a connection from the budget; `force` takes it even when the budget is spent.
  bool take(bool force) const {
    if (!open) return true;
    if (open->fetch_add(1, std::memory_order_relaxed) < max || force) return true;
    open->fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
};

/// How a pool served a request.
enum class Lent {
  kReady,       // on a connection that is up: write at once
  kConnecting,  // on a new connection: onUpstreamReady follows
  kQueued,      // waiting for a connection of the pool (the budget is spent)
  kOverflow,    // the budget is spent and the pool cannot queue
  kFailed,      // no connection can be made
};

/// How UpstreamPools::lend serves one exchange.
struct LendOptions {
  bool headRequest = false;
  bool http1Only = false;
  config::Duration connectTimeout{1000};
  ConnectionBudget budget;  // empty: not counted against any service budget
};

/// What the router sees of an upstream HTTP/1.1 exchange.
class UpstreamClient {
 public:
  virtual ~UpstreamClient() = default;
  /// A new connection finished connecting; the request may be written.
  virtual void onUpstreamReady() = 0;
  /// The exchange failed before any response byte arrived. `reused` tells whether the
  /// connection had served earlier requests (the keep-alive race).
  virtual void onUpstreamFailure(Reason reason, bool reused) = 0;
  /// The upstream did not process the request at all (HTTP/2 REFUSED_STREAM, or a stream
  /// above a GOAWAY's last stream id): it may be sent again, whatever its method.
  virtual void onUpstreamRefused() { onUpstreamFailure(Reason::kUpstreamReset, false); }
  virtual void onUpstreamHeaders(ResponseHead& head, bool endStream) = 0;
  virtual void onUpstreamData(std::string& data, bool endStream) = 0;
  virtual void onUpstreamTrailers(HeaderMap& trailers) = 0;
  /// The connection broke after the response started (or a tunnel ended abruptly).
  virtual void onUpstreamReset() = 0;
  /// The upstream connection's write buffer crossed a watermark.
  virtual void onUpstreamWatermark(bool aboveHigh) = 0;
  /// A queued request (Lent::kQueued) got its connection: `how` is kReady or kConnecting.
  virtual void onUpstreamGranted(UpstreamRequest& request, Lent how) = 0;
};

/// What Tether adds to a request head as it forwards it.
struct RequestExtras {
  int64_t timeoutMs = 0;  // > 0: the caller's remaining budget (x-tether-timeout-ms)
  int attempt = 1;        // > 1: sent as x-tether-attempt
};

/// Deadline propagation: the caller's remaining budget, in milliseconds.
inline constexpr std::string_view kTimeoutHeader = "x-tether-timeout-ms";
/// Set on retried requests so the next hop's sidecar does not multiply retries.
inline constexpr std::string_view kAttemptHeader = "x-tether-attempt";

/// One request/response exchange with an upstream, whatever the protocol: an HTTP/1.1
/// connection lent for one exchange, or a stream of a multiplexed HTTP/2 connection.
class UpstreamRequest {
 public:
  virtual ~UpstreamRequest() = default;
  /// Sends the head; `authority` replaces an empty request authority.
  virtual void sendHead(const RequestHead& head, std::string_view authority,
                        const RequestExtras& extras, bool endStream) = 0;
  virtual void sendData(std::string_view data, bool endStream) = 0;
  /// Ends the request with trailers (dropped where the framing cannot carry them).
  virtual void sendTrailers(const HeaderMap& trailers) = 0;
  /// Counted pause/resume of reading the response.
  virtual void readDisable(bool disable) = 0;
  /// Switches to raw bytes in both directions (after 101, or for CONNECT).
  virtual void enterTunnel() = 0;
  /// Aborts the exchange; no callback follows.
  virtual void close() = 0;
  /// The router is done with the exchange: the connection goes back to its pool when the
  /// exchange ended cleanly, and is closed (or the stream reset) otherwise.
  virtual void release(bool requestComplete) = 0;
  /// Request bytes accepted but not yet on the wire.
  virtual size_t bufferedBytes() const = 0;
};

/// One HTTP/1.1 connection to an endpoint. Owned by its pool while idle, lent to one
/// router at a time while active; frees itself (deferred) when closed.
class UpstreamConnection : public UpstreamRequest,
                           public TcpConnection::Handler,
                           public Http1Parser::Callbacks,
                           public Deletable {
 public:
  UpstreamConnection(Worker& worker, UpstreamPool& pool);
  ~UpstreamConnection() override;

  int connect(const sockaddr* addr, config::Duration timeout);
  void attach(UpstreamClient* client, bool headRequest);
  bool reused() const { return requestsServed_ > 0; }

  // UpstreamRequest
  void sendHead(const RequestHead& head, std::string_view authority, const RequestExtras& extras,
                bool endStream) override;
  void sendData(std::string_view data, bool endStream) override;
  void sendTrailers(const HeaderMap& trailers) override;
  void readDisable(bool disable) override { conn_.readDisable(disable); }
  void enterTunnel() override;
  void close() override;
  void release(bool requestComplete) override;
  size_t bufferedBytes() const override { return conn_.bufferedBytes(); }

  // TcpConnection::Handler
  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onConnected(int status) override;
  void onWriteWatermark(bool aboveHigh) override;
  void onClosed() override;

  // Http1Parser::Callbacks
  int onHeadersComplete(Http1Message& message) override;
  int onBody(const char* data, size_t len) override;
  int onMessageComplete(HeaderMap& trailers) override;

 private:
  void fail(Reason reason);

  Worker& worker_;
  UpstreamPool& pool_;
  std::shared_ptr<std::atomic<int64_t>> budget_;  // the service's open connections
  TcpConnection conn_;
  Http1Parser parser_;
  Timer timer_;
  UpstreamClient* client_ = nullptr;
  std::string scratch_;
  uint64_t requestsServed_ = 0;
  uint64_t idleSince_ = 0;  // loop time (ms) the connection last went idle
  bool headRequest_ = false;
  bool chunked_ = false;  // the request body is chunked
  bool responseStarted_ = false;
  bool responseComplete_ = false;
  bool keepAlive_ = true;
  bool tunnel_ = false;
  bool closed_ = false;
  bool idle_ = false;
  bool parserPaused_ = false;

  friend class UpstreamPool;
};

/// Keep-alive connections to one endpoint, for one worker.
class UpstreamPool {
 public:
  UpstreamPool(Worker& worker, UpstreamTarget target);
  ~UpstreamPool();

  /// Lends a connection to `client`: an idle one (kReady) or a new one (kConnecting). When
  /// `budget` is spent the request waits in line for one of this pool's connections
  /// (kQueued; onUpstreamGranted follows, or cancelWait). Returns nullptr unless kReady or
  /// kConnecting (the client's onUpstreamFailure has not been called).
  UpstreamConnection* acquire(UpstreamClient& client, bool headRequest,
                              config::Duration connectTimeout, const ConnectionBudget& budget,
                              Lent& how);
  /// Takes a queued request out of line.
  void cancelWait(UpstreamClient& client);
  /// Called by a connection that finished an exchange and may be reused.
  void returnIdle(UpstreamConnection* conn);
  /// Called by a connection when it closes.
  void onConnectionClosed(UpstreamConnection* conn);
  /// Closes every connection; queued requests fail.
  void closeAll();
  const config::Address& address() const { return target_.address(); }
  size_t idleCount() const { return idle_.size(); }
  size_t connectionCount() const { return all_.size(); }
  size_t queued() const { return waiters_.size(); }

 private:
  struct Waiter {
    UpstreamClient* client;
    bool headRequest;
    config::Duration connectTimeout;
    ConnectionBudget budget;
  };
  UpstreamConnection* takeIdle(UpstreamClient& client, bool headRequest);
  UpstreamConnection* open(UpstreamClient& client, bool headRequest,
                           config::Duration connectTimeout, const ConnectionBudget& budget);
  /// Hands freed connections (or budget) to queued requests, first come first served. Runs
  /// from a timer, never inside a connection's callbacks.
  void serveWaiters();

  Worker& worker_;
  UpstreamTarget target_;
  std::vector<UpstreamConnection*> idle_;  // most recently used last
  std::unordered_set<UpstreamConnection*> all_;
  std::deque<Waiter> waiters_;
  Timer serveTimer_;
  friend class UpstreamConnection;
};

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
