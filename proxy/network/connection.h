#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/address.h"

namespace tether::proxy {

/// Fills `out` from a numeric IPv4/IPv6 address; false when the host is not one.
bool toSockaddr(const config::Address& address, sockaddr_storage& out);

class Worker;
class TlsContext;
class TlsContextSlot;
class TlsSession;

/// A TCP connection on a worker's loop with a buffered writer and watermarks. Writes are
/// appended to an output buffer and flushed once per loop turn (so a response head and its
/// body leave in one syscall). Used for both downstream and upstream connections.
class TcpConnection {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    /// Bytes arrived. `data` is only valid during the call.
    virtual void onRead(const char* data, size_t len) = 0;
    /// The peer closed its side (status UV_EOF) or the read failed.
    virtual void onReadEnd(int status) = 0;
    /// An outbound connect finished (0 or a negative libuv error).
    virtual void onConnected(int status) {}
    /// The output buffer passed the high mark (true) or drained below the low mark (false).
    virtual void onWriteWatermark(bool aboveHigh) {}
    /// The TLS handshake completed with `alpn` ("" when none was chosen). Returning false
    /// drops what was written so far and closes (the protocol guessed was wrong).
    virtual bool onTlsHandshake(std::string_view alpn) { return true; }
    /// The handle is closed; the owner may now delete itself (deferred).
    virtual void onClosed() = 0;
  };

  TcpConnection(Worker& worker, Handler& handler);
  ~TcpConnection();
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  /// Takes over an accepted, connected socket and starts reading. Returns 0 or a negative
  /// libuv error (then `fd` is still the caller's to close).
  int adopt(int fd);
  /// Starts an outbound connect; Handler::onConnected follows.
  int connect(const sockaddr* addr);

  /// Server side: a first byte of 0x16 (a TLS handshake record) starts TLS with the slot's
  /// current context; any other first byte is plaintext, or an error when `required`.
  /// `alpn`: the protocols the connection may pick, in ALPN wire format (static storage).
  void acceptTls(std::shared_ptr<TlsContextSlot> slot, bool required, const char* alpn = nullptr);
  /// Client side: TLS starts as soon as the connection is up; `serverName` is the SNI name
  /// verified (or an IP address, verified against the certificate's IP SANs).
  void connectTls(std::shared_ptr<TlsContext> ctx, const std::string& serverName);
  /// The negotiated ALPN protocol ("" without TLS or ALPN).
  std::string_view alpn() const;
  bool tls() const { return tls_ != nullptr; }
  /// The verified client certificate's identity (mutual TLS listeners), or "".
  std::string_view tlsPeerIdentity() const;

  /// Multiplexed connections (HTTP/2) flush once per loop turn, after every callback of the
  /// turn, so the answers of many streams share one write; others flush after each callback.
  void setFlushOncePerTurn() { flushOncePerTurn_ = true; }
  /// Counted: each disable needs a matching enable before reading resumes.
  void readDisable(bool disable);

  void write(std::string_view data);
  /// Closes once everything written so far has been flushed.
  void closeAfterFlush();
  /// Closes now; buffered output is dropped. Idempotent.
  void close();
  bool connected() const { return connected_; }
  size_t bufferedBytes() const;
  std::string peerAddress() const;
  uv_tcp_t* handle() { return &tcp_; }

  /// Called by the worker once per loop turn for connections with pending output.
  void flush();

  // libuv callback bridges (free functions forward here).
  /// Where the next read goes: the worker's read buffer.
  uv_buf_t readBuffer();
  void onUvRead(ssize_t nread, const uv_buf_t* buf);
  void onUvWrite(int status);
  void onUvConnect(int status);
  void onUvClose();

 private:
  void startReading();
  void checkLowWatermark();
  /// Ciphertext arrived: decrypt and hand the plaintext on. False when the connection ended.
  bool readTls(const char* data, size_t len);
  /// A TLS failure: logged, then reported like a broken read.
  void failTls(const std::string& why);

  Worker& worker_;
  Handler& handler_;
  uv_tcp_t tcp_;
  std::string out_;
  size_t inflightBytes_ = 0;
  int readDisabled_ = 0;
  bool initialized_ = false;
  bool connected_ = false;
  bool readEnded_ = false;
  bool closing_ = false;
  bool closeAfterFlush_ = false;
  bool flushScheduled_ = false;
  bool flushOncePerTurn_ = false;
  bool aboveHigh_ = false;
  std::unique_ptr<TlsSession> tls_;
  std::string plainOut_;                       // TLS: plaintext written since the last flush
  std::shared_ptr<TlsContextSlot> acceptTls_;  // server TLS decided by the first byte
  bool tlsRequired_ = false;
  const char* acceptAlpn_ = nullptr;
};

}  // namespace tether::proxy
