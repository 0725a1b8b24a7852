#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "config/address.h"
#include "config/duration.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/network/connection.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// Raw TCP between a downstream connection and one upstream address: bytes both ways,
/// counted, with a connect timeout and backpressure through the watermarks (a slow side
/// pauses reading the other). Owns the upstream connection and frees itself once that is
/// closed; the downstream owner calls detach() when its own socket goes.
class TcpProxy : public TcpConnection::Handler, public Deletable {
 public:
  /// `ownerSlot` is where the owner keeps its pointer to this proxy; it is cleared when the
  /// proxy frees itself (the owner stops calling it).
  TcpProxy(Worker& worker, TcpConnection& downstream, TcpProxy** ownerSlot);

  /// Connects; bytes from the downstream may be passed on at once (they wait for it).
  bool connect(const sockaddr* addr, config::Duration timeout);
  void onDownstreamData(const char* data, size_t len);
  /// The client finished sending: the upstream connection ends after what is buffered.
  void onDownstreamEnd();
  void onDownstreamWatermark(bool aboveHigh);
  /// The downstream socket is closed: close the upstream too; no more calls to it.
  void detach();
  /// Loop time (ms) of the last byte in either direction (for the idle timeout).
  uint64_t lastActivity() const { return lastActivity_; }

  // TcpConnection::Handler (the upstream side)
  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onConnected(int status) override;
  void onWriteWatermark(bool aboveHigh) override;
  void onClosed() override;

 private:
  void touch() { lastActivity_ = uv_now(worker_.loop()); }

  Worker& worker_;
  TcpConnection* down_;
  TcpProxy** ownerSlot_;
  TcpConnection up_;
  Timer connectTimer_;
  uint64_t lastActivity_;
  bool upPaused_ = false;    // we paused the upstream read for a slow client
  bool downPaused_ = false;  // we paused the downstream read for a slow upstream
};

/// Raw TCP as a downstream connection's codec: every event goes to the proxy while it
/// lives; an idle connection (no byte either way for listener.tcpIdleTimeout) is closed.
class TcpServerCodec : public ServerCodec {
 public:
  TcpServerCodec(Worker& worker, TcpConnection& conn, config::Duration idleTimeout)
      : worker_(worker), conn_(conn), idleTimeout_(idleTimeout) {}
  /// Starts the proxy to `target`; `early` holds bytes the client already sent.
  void start(const sockaddr* target, std::string early);

  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onWriteWatermark(bool aboveHigh) override;
  void onSweep(uint64_t now) override;
  /// Raw TCP has no way to ask the client to go; the drain deadline ends it.
  void onDrain() override {}
  void abortForShutdown() override { conn_.close(); }
  void onConnectionClosed() override;

 private:
  Worker& worker_;
  TcpConnection& conn_;
  config::Duration idleTimeout_;
  TcpProxy* proxy_ = nullptr;  // frees itself (and clears this)
};

/// The socket's local address, and in `original` the SO_ORIGINAL_DST of a connection that
/// iptables redirected to us. Returns whether `original` is set (a real redirect).
bool originalDestination(uv_tcp_t* tcp, sockaddr_storage& local, sockaddr_storage& original);
/// `addr` as a config address (numeric host).
config::Address fromSockaddr(const sockaddr_storage& addr);
/// The port of `addr` (IPv4 or IPv6).
uint16_t sockaddrPort(const sockaddr_storage& addr);

}  // namespace tether::proxy
