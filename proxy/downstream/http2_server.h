#pragma once

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/codec/http2_session.h"
#include "proxy/downstream/server_codec.h"
#include "proxy/stream/stream.h"

namespace tether::proxy {

/// A token bucket over loop time, for counting abusive frames without a timer.
class FrameBudget {
 public:
  FrameBudget(uint32_t burst, uint32_t perSecond)
      : burst_(burst), perSecond_(perSecond), tokens_(burst) {}
  /// Takes one token; false when the bucket is empty.
  bool take(uint64_t nowMs);

 private:
  uint32_t burst_;
  uint32_t perSecond_;
  double tokens_;
  uint64_t last_ = 0;
};

/// The HTTP/2 server side of one downstream connection (h2c with prior knowledge, or h2
/// after ALPN): each request stream becomes an ActiveStream, so filters see the same events
/// as for HTTP/1.1. Window updates are sent only as the request body is handed on (a slow
/// upstream shrinks the client's window), and a stream whose response queue passes the high
/// watermark pauses its upstream (a slow client pauses the upstream read).
class Http2ServerSession : public Http2Session, public ServerCodec {
 public:
  /// `conn` belongs to the owning DownstreamConnection, which outlives this session.
  Http2ServerSession(Worker& worker, TcpConnection& conn, const config::ListenerConfig& listener,
                     std::string peer);
  ~Http2ServerSession() override;

  /// Where the connection was going before iptables redirected it (for every stream).
  void setOriginalDestination(std::shared_ptr<const config::EndpointConfig> e) {
    originalDestination_ = std::move(e);
  }
  /// Sends the server preface (SETTINGS).
  void start();
  /// Bytes from the client. Closes the connection (after flushing a GOAWAY) on a
  /// connection error.
  void onRead(const char* data, size_t len) override;
  /// A client that stops sending is gone; its streams cannot finish.
  void onReadEnd(int status) override;
  void onWriteWatermark(bool aboveHigh) override { Http2Session::onWriteWatermark(aboveHigh); }
  /// Graceful drain, two steps (RFC 9113 §6.8): GOAWAY with the maximum stream id now, the
  /// real last stream id a second later; the connection closes once its streams are done.
  void onDrain() override;
  /// The drain deadline: waiting requests get 503 `draining`, the rest are reset.
  void abortForShutdown() override;
  void onSweep(uint64_t now) override;
  /// The socket is gone: every stream ends quietly.
  void onConnectionClosed() override;

 private:
  class Stream;

  void fillCallbacks(nghttp2_session_callbacks* cb) override;
  /// Looks at frame headers before nghttp2 does, for the rules it leaves out: HEADERS on a
  /// lower, never-opened stream id (RFC 9113 §5.1.1: a connection error; nghttp2 ignores
  /// it) and a PRIORITY frame making a stream depend on itself (§5.3.1: a stream error;
  /// nghttp2 ignores PRIORITY once priorities are off), PRIORITY on stream 0 (§6.3), and
  /// DATA or HEADERS on a stream the client already closed (§5.1). Returns how many bytes of
  /// `data` may be processed; a connection error stops there, with scanError_.
  size_t scanFrames(const char* data, size_t len);
  void dispatchHeaders(Stream& s, bool endStream);
  /// Answers a stream the codec refuses (431, 413) without a filter chain.
  void replyDirect(Stream& s, Reason reason);
  /// A protection tripped: GOAWAY ENHANCE_YOUR_CALM and close.
  void closeForAbuse(const char* kind);
  void closeIfFinished();
  void afterSend() override { closeIfFinished(); }
  void goAway(uint32_t errorCode);

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t streamId, const uint8_t* data,
                         size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t streamId, uint32_t errorCode, void* user);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user);

  const config::ListenerConfig& listener_;
  const config::Http2Settings& settings_;
  std::string peer_;
  std::shared_ptr<const config::EndpointConfig> originalDestination_;
  // Open streams, an intrusive list (no allocation per stream).
  Stream* streams_ = nullptr;
  size_t streamCount_ = 0;
  void link(Stream* s);
  void unlink(Stream* s);
  /// A copy of the open streams, for loops that may close some.
  std::vector<Stream*> openStreams() const;
  FrameBudget controlBudget_;
  FrameBudget resetBudget_;
  const char* scanAbuse_ = nullptr;  // a protection scanFrames tripped (closeForAbuse kind)
  std::string bodyScratch_;
  // scanFrames() state: the frame header being read, the payload left to skip, the highest
  // stream id a client HEADERS opened, and ranges of ids it skipped (bounded).
  uint8_t frameHeader_[9];
  size_t frameHeaderHave_ = 0;
  size_t payloadLeft_ = 0;
  size_t prefaceLeft_ = 24;
  uint32_t maxStreamId_ = 0;
  std::vector<std::pair<uint32_t, uint32_t>> skippedIds_;
  uint8_t priorityDep_[4];
  size_t priorityHave_ = 5;  // < 4: reading a PRIORITY frame's dependency
  uint32_t priorityStream_ = 0;
  // The last 32 streams the client closed its side of (a ring): nghttp2 forgets a
  // closed stream, so DATA or HEADERS sent on one after the client's END_STREAM or
  // RST_STREAM would go unanswered (RFC 9113 §5.1 makes both errors).
  struct ClientClosed {
    uint32_t id = 0;
    bool reset = false;  // by RST_STREAM, else by END_STREAM
  };
  std::array<ClientClosed, 32> clientClosed_{};
  size_t clientClosedNext_ = 0;
  const ClientClosed* findClientClosed(uint32_t id) const;
  void noteClientClosed(uint32_t id, bool reset);
  // Stream errors scanFrames() found, sent after nghttp2 took the bytes: (id, error code).
  std::vector<std::pair<uint32_t, uint32_t>> streamErrors_;
  uint32_t scanError_ = NGHTTP2_PROTOCOL_ERROR;  // when scanFrames() stops short
  uint64_t idleSince_ = 0;
  uint64_t finalGoawayAt_ = 0;  // drain step two, in loop time; 0 = not draining
  bool goawaySent_ = false;
  bool closing_ = false;
};

}  // namespace tether::proxy
