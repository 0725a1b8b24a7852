#pragma once
// What the router (and a health check) sees of an upstream, whatever the protocol: where
// connections go, the connection budget, how an exchange was lent, and the exchange itself.

#include <netinet/in.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "config/address.h"
#include "config/rules.h"
#include "proxy/codec/headers.h"
#include "proxy/common/reason.h"
#include "proxy/network/connection.h"
#include "proxy/network/tls.h"

namespace tether::proxy {

class UpstreamRequest;

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
  // Connections open to the service; relaxed (a racing worker may read it one stale).
  std::shared_ptr<std::atomic<int64_t>> open;
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

}  // namespace tether::proxy
