#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "proxy/common/timer.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/network/connection.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// One accepted connection: the socket (with TLS, when the listener has it), where an
/// intercepted connection was going, and detection. Its first bytes (or ALPN, over TLS)
/// tell the protocol; the connection then installs the server codec that serves it
/// (Http1ServerCodec, Http2ServerSession, TcpServerCodec) and hands it every later event.
class DownstreamConnection : public TcpConnection::Handler, public Deletable {
 public:
  DownstreamConnection(Worker& worker, const config::ListenerConfig& listener,
                       std::shared_ptr<std::atomic<uint32_t>> listenerConnections);
  ~DownstreamConnection() override;

  /// Takes over an accepted socket (see TcpConnection::adopt); on failure the caller
  /// still owns `fd`.
  int adopt(int fd);
  /// TLS termination (before start()): see TcpConnection::acceptTls. ALPN offers what the
  /// listener's protocol allows, and decides the codec once the handshake is done.
  void acceptTls(std::shared_ptr<TlsContextSlot> slot, bool required);
  /// Called once the connection is admitted: starts timers and reading.
  void start();
  /// Marks the connection as counted in its listener's active total.
  void countAsActive() { counted_ = true; }
  /// Drain: close if idle, otherwise close after the current response.
  void onDrain();
  /// The drain deadline passed: a request still waiting for its response gets 503
  /// `draining` (a clear answer rather than a reset); then the connection closes.
  void abortForShutdown();
  /// Closes at once (shutdown, overflow); frees itself in the close callback.
  void closeNow();
  /// Called by the worker's sweep with the loop time (ms): fires an expired deadline.
  void onSweep(uint64_t now);

  // TcpConnection::Handler
  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onWriteWatermark(bool aboveHigh) override;
  void onClosed() override;
  bool onTlsHandshake(std::string_view alpn) override;

 private:
  /// Detection: true once the protocol is known (and the buffered bytes were handed on).
  bool detect(const char* data, size_t len);
  void startHttp1();
  void startHttp2();
  /// Raw TCP from here on; `early` holds bytes already read.
  void startTcp(std::string early, const char* outcome);
  /// Records how the protocol was decided (metric label) and how long it took.
  void detected(const char* outcome);

  Worker& worker_;
  const config::ListenerConfig& listener_;
  std::shared_ptr<std::atomic<uint32_t>> listenerConnections_;
  TcpConnection conn_;
  std::unique_ptr<ServerCodec> codec_;  // once the protocol is known
  /// Loop time (ms) by which a request head must be complete: a client that never speaks
  /// is closed like a slow one (the HTTP/1.1 codec carries it on).
  uint64_t headersDeadline_ = 0;
  std::unique_ptr<Timer> detectTimer_;  // no bytes by detect.timeout: raw TCP
  uint64_t acceptedAt_ = 0;             // uv_hrtime() at start()
  sockaddr_storage originalDst_{};
  bool hasOriginalDst_ = false;
  /// originalDst_ as an endpoint, when this listener routes by it.
  std::shared_ptr<const config::EndpointConfig> originalEndpoint_;
  bool canTcp_ = false;  // this listener sends non-HTTP connections somewhere
  std::string peer_;
  std::string pending_;  // bytes read while detecting
  bool counted_ = false;
  bool closed_ = false;
  bool detecting_ = false;  // the first bytes are still being looked at
  // protocol: http2 on a listener with TLS: the session starts once the first bytes show
  // plaintext or the handshake is done (its SETTINGS must not go out before TLS does).
  bool awaitingHttp2_ = false;
};

}  // namespace tether::proxy
