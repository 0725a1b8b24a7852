#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "proxy/codec/http1_parser.h"
#include "proxy/common/timer.h"
#include "proxy/downstream/http2_server.h"
#include "proxy/downstream/tcp_proxy.h"
#include "proxy/network/connection.h"
#include "proxy/stream/stream.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// One accepted connection. Its first bytes tell the protocol: the HTTP/2 preface hands the
/// connection to an Http2ServerSession; otherwise it is HTTP/1.1, served here: requests
/// parsed with llhttp, one ActiveStream at a time (pipelined requests wait, parsed later, so
/// responses leave in order), responses encoded, and a byte tunnel after an accepted
/// Upgrade/CONNECT.
class DownstreamConnection : public TcpConnection::Handler,
                             public Http1Parser::Callbacks,
                             public ResponseEncoder,
                             public Deletable {
 public:
  /// While draining, an HTTP/1.1 connection idle this long is closed (a request that
  /// arrives before then is answered, with connection: close).
  static constexpr std::chrono::milliseconds kDrainIdleClose{1000};

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

  // Http1Parser::Callbacks
  int onHeadersComplete(Http1Message& message) override;
  int onBody(const char* data, size_t len) override;
  int onMessageComplete(HeaderMap& trailers) override;

  // ResponseEncoder
  void encodeHeaders(ResponseHead& head, bool endStream) override;
  void encodeData(std::string_view data, bool endStream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  void readDisable(bool disable) override;
  void resetFromStream() override;
  void enterTunnel() override;
  void onStreamComplete() override;

 private:
  void parse(const char* data, size_t len);
  void resumeParsing();
  void replyError(Reason reason, const std::string& why);
  void armHeaderTimer();
  void closeIfPeerDone();
  void armIdleTimer();
  bool buildRequestHead(Http1Message& message, RequestHead& head);
  /// Records the 413 failure when `bytes` exceed http.maxRequestBodyMiB (if set).
  bool bodyTooLarge(uint64_t bytes);
  /// Detection: true once the protocol is known (and the buffered bytes were handed on).
  bool detect(const char* data, size_t len);
  void startHttp2();
  /// Records how the protocol was decided (metric label) and how long it took.
  void detected(const char* outcome);
  /// Raw TCP from here on; `early` holds bytes already read.
  void startTcp(std::string early, const char* outcome);

  Worker& worker_;
  const config::ListenerConfig& listener_;
  std::shared_ptr<std::atomic<uint32_t>> listenerConnections_;
  TcpConnection conn_;
  Http1Parser parser_;
  uint64_t deadline_;  // loop time (ms) at which timerKind_ fires
  std::unique_ptr<ActiveStream> stream_;
  std::unique_ptr<Http2ServerSession> h2_;
  TcpProxy* tcpProxy_ = nullptr;        // raw TCP mode; frees itself (and clears this)
  bool tcpMode_ = false;                // raw TCP from the first byte on
  std::unique_ptr<Timer> detectTimer_;  // no bytes by detect.timeout: raw TCP
  uint64_t acceptedAt_ = 0;             // uv_hrtime() at start()
  sockaddr_storage originalDst_{};
  bool hasOriginalDst_ = false;
  /// originalDst_ as an endpoint, when this listener routes by it.
  std::shared_ptr<const config::EndpointConfig> originalEndpoint_;
  bool canTcp_ = false;  // this listener sends non-HTTP connections somewhere
  std::string peer_;
  std::string pending_;      // bytes read but not parsed while a stream is active
  std::string bodyScratch_;  // reused for body chunks handed to the stream
  std::string out_;          // reused for encoding heads
  int requestVersionMinor_ = 1;
  uint64_t requestBodyBytes_ = 0;
  bool requestKeepAlive_ = true;
  bool requestIsHead_ = false;
  bool requestIsConnect_ = false;
  bool requestComplete_ = false;
  bool responseChunked_ = false;
  bool closeAfterResponse_ = false;
  // The client shut down its sending side: requests already read (pipelined) are still
  // answered, then the connection closes.
  bool peerDone_ = false;
  bool parserPaused_ = false;        // paused after a complete request (pipelining)
  bool pipelineReadPaused_ = false;  // reading stopped while pending_ is full
  bool upgradePending_ = false;      // an Upgrade/CONNECT request waits for its answer
  bool tunnel_ = false;
  bool inParse_ = false;
  bool counted_ = false;
  bool closed_ = false;
  bool errorSent_ = false;
  bool detecting_ = false;  // the first bytes are still being looked at
  // protocol: http2 on a listener with TLS: the session starts once the first bytes show
  // plaintext or the handshake is done (its SETTINGS must not go out before TLS does).
  bool awaitingHttp2_ = false;
  enum class TimerKind { kNone, kHeaders, kIdle } timerKind_ = TimerKind::kNone;
};

}  // namespace tether::proxy
