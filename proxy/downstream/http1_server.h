#pragma once

#include <memory>
#include <string>

#include "proxy/codec/http1_parser.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/network/connection.h"
#include "proxy/stream/stream.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// HTTP/1.1 on a downstream connection: requests parsed with llhttp, one ActiveStream at a
/// time (pipelined requests wait, parsed later, so responses leave in order), responses
/// encoded, and a byte tunnel after an accepted Upgrade/CONNECT. Request-head and idle
/// timeouts are deadlines the worker's sweep checks.
class Http1ServerCodec : public ServerCodec, public Http1Parser::Callbacks, public ResponseEncoder {
 public:
  /// While draining, a connection idle this long is closed (a request that arrives before
  /// then is answered, with connection: close).
  static constexpr std::chrono::milliseconds kDrainIdleClose{1000};

  /// `conn` belongs to the owning DownstreamConnection, which outlives the codec.
  /// `headersDeadline`: loop time (ms) by which the first request head must be complete
  /// (it runs from the accept, detection included).
  Http1ServerCodec(Worker& worker, TcpConnection& conn, const config::ListenerConfig& listener,
                   const std::string& peer,
                   std::shared_ptr<const config::EndpointConfig> originalEndpoint,
                   uint64_t headersDeadline);
  ~Http1ServerCodec() override;

  // ServerCodec
  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onWriteWatermark(bool aboveHigh) override;
  void onSweep(uint64_t now) override;
  void onDrain() override;
  void abortForShutdown() override;
  void onConnectionClosed() override;

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
  void closeNow();
  bool buildRequestHead(Http1Message& message, RequestHead& head);
  /// Records the 413 failure when `bytes` exceed http.maxRequestBodyMiB (if set).
  bool bodyTooLarge(uint64_t bytes);

  Worker& worker_;
  TcpConnection& conn_;
  const config::ListenerConfig& listener_;
  const std::string& peer_;
  std::shared_ptr<const config::EndpointConfig> originalEndpoint_;
  Http1Parser parser_;
  uint64_t deadline_;  // loop time (ms) at which timerKind_ fires
  std::unique_ptr<ActiveStream> stream_;
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
  bool closed_ = false;
  bool errorSent_ = false;
  enum class TimerKind { kNone, kHeaders, kIdle } timerKind_ = TimerKind::kHeaders;
};

}  // namespace tether::proxy
