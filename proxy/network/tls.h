#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/bootstrap.h"

namespace tether::proxy {

/// One SSL_CTX built from PEM files. Immutable once built; shared by every worker (OpenSSL
/// contexts are thread-safe), replaced as a whole when its files change.
class TlsContext {
 public:
  ~TlsContext();
  /// A server context: certificate chain + key, ALPN "h2" then "http/1.1", TLS 1.2 and 1.3,
  /// session cache and tickets for resumption. nullptr and `error` on failure.
  static std::shared_ptr<TlsContext> server(const config::TlsServerConfig& c, std::string& error);
  /// A client context: verifies the peer against caFile (and the SNI name or IP), presents
  /// certFile/keyFile when set, offers `alpn` (a comma-separated list: "h2", "http/1.1",
  /// "h2,http/1.1").
  static std::shared_ptr<TlsContext> client(const config::TlsClientConfig& c, std::string_view alpn,
                                            std::string& error);
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  /// A context for `method` that refuses anything older than TLS 1.2; nullptr and `error`
  /// when OpenSSL cannot make one.
  static std::shared_ptr<TlsContext> create(const SSL_METHOD* method, std::string& error);
  SSL_CTX* ctx_;
};

/// The current context for one configuration, swapped in place when the certificate
/// files change (so new connections use the new certificate; open ones keep theirs).
class TlsContextSlot {
 public:
  std::shared_ptr<TlsContext> get() const;
  void set(std::shared_ptr<TlsContext> ctx);

 private:
  mutable std::mutex mu_;  // taken once per new connection, never per request
  std::shared_ptr<TlsContext> ctx_;
};

/// Every TLS context of the process, by configuration. Slots are made on first use (any
/// thread); reloadChanged() runs on the control loop and rebuilds the contexts whose files'
/// modification times moved.
class TlsRegistry {
 public:
  /// nullptr (and `error`) when the files do not make a valid context.
  std::shared_ptr<TlsContextSlot> server(const config::TlsServerConfig& c, std::string& error);
  std::shared_ptr<TlsContextSlot> client(const config::TlsClientConfig& c, std::string_view alpn,
                                         std::string& error);
  /// Rebuilds contexts whose files changed; returns how many were replaced.
  int reloadChanged();

 private:
  struct Entry {
    std::vector<std::string> files;
    std::vector<int64_t> mtimes;
    std::function<std::shared_ptr<TlsContext>(std::string&)> build;
    std::shared_ptr<TlsContextSlot> slot;
  };
  std::shared_ptr<TlsContextSlot> get(
      const std::string& key, std::vector<std::string> files,
      std::function<std::shared_ptr<TlsContext>(std::string&)> build, std::string& error);
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

/// TLS over a memory BIO pair: ciphertext in and out as bytes, so the socket stays with
/// libuv and nothing blocks. Plaintext written before the handshake completes is held and
/// sent after it.
class TlsSession {
 public:
  TlsSession(std::shared_ptr<TlsContext> ctx, bool server, const std::string& sni);
  /// Server side: the protocols this connection may choose by ALPN, in order of preference,
  /// in wire format (static storage); without it, h2 then http/1.1.
  void setServerAlpn(const char* wire);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  /// Client side: the ClientHello, appended to `out`. Plaintext sent before the handshake
  /// completes is held until releaseHeld(). False when the session could not be set up
  /// (error() says why).
  bool startHandshake(std::string& out);
  /// Ciphertext from the peer. Plaintext is appended to `plain`, records to send back to
  /// `out`. False on a TLS error (see error()).
  bool receive(const char* data, size_t len, std::string& plain, std::string& out);
  /// Plaintext to send, encrypted onto `out`. False on a TLS error.
  bool send(std::string_view plain, std::string& out);
  bool handshakeDone() const { return handshakeDone_; }
  /// True once, right after the handshake completed (the owner may inspect ALPN, then
  /// releaseHeld() or drop the connection).
  bool takeHandshakeEvent() {
    bool e = handshakeEvent_;
    handshakeEvent_ = false;
    return e;
  }
  /// Encrypts the plaintext written before the handshake completed onto `out`.
  bool releaseHeld(std::string& out);
  /// The protocol ALPN chose ("h2", "http/1.1"), or "".
  std::string_view alpn() const;
  /// The first URI SAN of a client certificate that verified against the listener's
  /// caFile (mutual TLS), e.g. a SPIFFE ID; "" otherwise.
  const std::string& peerIdentity() const { return peerIdentity_; }
  size_t pendingPlaintext() const { return pending_.size(); }
  const std::string& error() const { return error_; }
  /// The peer sent close_notify.
  bool peerClosed() const { return peerClosed_; }

 private:
  void readPeerIdentity();
  bool drive(std::string& plain, std::string& out);
  void drain(std::string& out);
  bool fail(int rc);

  std::shared_ptr<TlsContext> ctx_;  // keeps the SSL_CTX alive
  SSL* ssl_;
  BIO* rbio_;
  BIO* wbio_;
  std::string pending_;
  std::string error_;
  bool ready_ = false;  // set up completely (else error_ says why)
  bool handshakeDone_ = false;
  bool handshakeEvent_ = false;
  std::string peerIdentity_;
  bool peerClosed_ = false;
};

}  // namespace tether::proxy
