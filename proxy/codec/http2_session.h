#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/bootstrap.h"
#include "proxy/codec/headers.h"
#include "proxy/network/connection.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// One stream's outgoing body as an nghttp2 data source: bytes queued by the codec user,
/// pulled by nghttp2 as the peer's windows allow, and written to the socket without another
/// copy (NGHTTP2_DATA_FLAG_NO_COPY). Trailers, when set, follow the last byte.
class Http2OutBody {
 public:
  virtual ~Http2OutBody() = default;

  size_t queued() const { return buf_.size() - off_; }

 protected:
  /// The queue fell below the low watermark after being above the high one (or the
  /// reverse): the producer should resume (or pause).
  virtual void onOutWatermark(bool aboveHigh) {}

  PooledString buf_;  // a small response body costs no malloc
  size_t off_ = 0;
  bool end_ = false;          // no more bytes will be queued
  bool hasTrailers_ = false;  // ... and trailers close the stream
  HeaderMap trailers_;
  bool deferred_ = false;  // nghttp2 is waiting for resume_data
  bool outAboveHigh_ = false;

  friend class Http2Session;
};

/// What the server and client sessions share: an nghttp2 session over one TcpConnection,
/// fed by receive() and drained by send() into the connection's buffer, stopping at its high
/// watermark (the socket is the flow control for everything we send).
class Http2Session : public Worker::TurnHook {
 public:
  Http2Session(Worker& worker, TcpConnection& conn);
  virtual ~Http2Session();
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

  /// Feeds bytes read from the socket. Returns nghttp2's result: negative when the session
  /// is dead (GOAWAY is queued where the protocol allows one; flush and close).
  ssize_t receive(const char* data, size_t len);
  /// Serializes pending frames into the connection, once, at the end of this loop turn (so
  /// the frames of many streams, and a body with its end, leave together).
  void send();
  void onTurnEnd() override;
  /// The connection's write buffer crossed a watermark.
  void onWriteWatermark(bool aboveHigh);
  /// Neither side has anything more to say (GOAWAY exchanged, streams done).
  bool finished() const;
  /// Sends what is pending (ignoring the watermark), then closes the connection.
  void closeAfterSend();
  nghttp2_session* session() { return session_; }

 protected:
  /// Creates session_ with the callbacks every session uses plus the subclass's own.
  void init(bool server, const config::Http2Settings& settings);
  /// Hooks for subclasses (callbacks are set up by init()).
  virtual void fillCallbacks(nghttp2_session_callbacks* cb) = 0;
  /// Runs after each batch of frames went out.
  virtual void afterSend() {}

  /// Queues `data` on `body` and wakes nghttp2 if it was waiting.
  void queueData(int32_t streamId, Http2OutBody& body, std::string_view data, bool end);
  /// Ends `body` with trailers.
  void queueTrailers(int32_t streamId, Http2OutBody& body, const HeaderMap& trailers);
  /// A data provider that reads `body`.
  static nghttp2_data_provider provider(Http2OutBody& body);
  /// Fills nva_ with `head` fields (connection-specific fields dropped), after any pseudo
  /// headers the caller already pushed.
  void appendFields(const HeaderMap& headers);
  void pushField(std::string_view name, std::string_view value);

  Worker& worker_;
  TcpConnection& conn_;
  nghttp2_session* session_ = nullptr;
  std::vector<nghttp2_nv> nva_;
  size_t lowWatermark_;
  size_t highWatermark_;
  bool inNghttp2_ = false;  // inside mem_recv/send: nghttp2 is not re-entrant
  bool sendWanted_ = false;
  bool writeBlocked_ = false;
  bool closeWanted_ = false;
  bool sendScheduled_ = false;
  bool afterPoll_ = false;  // send after one more poll (Worker::scheduleTurnHook)
  // Server: SETTINGS_MAX_CONCURRENT_STREAMS as the client is told it. nghttp2 is given a
  // higher one (see init()), so a stream over the limit is the subclass's to refuse.
  uint32_t advertisedMaxStreams_ = 0;
  bool settingsSent_ = false;

 private:
  /// The connection's buffer is above the high watermark: stop serializing for now.
  bool blocked();
  static ssize_t onSend(nghttp2_session*, const uint8_t* data, size_t len, int, void* user);
  /// Writes the first SETTINGS frame with advertisedMaxStreams_ in place of nghttp2's value.
  void writeFirstSettings(std::string_view frame);
  static int onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source* source, void* user);
  static ssize_t onReadBody(nghttp2_session*, int32_t streamId, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void* user);
};

/// HTTP/2 fields that are connection-specific (RFC 9113 §8.2.2) and never forwarded.
bool isConnectionSpecificField(std::string_view name);

}  // namespace tether::proxy
