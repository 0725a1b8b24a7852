#include "proxy/downstream/http2_server.h"

#include <algorithm>
#include <charconv>

#include "proxy/common/log.h"

namespace tether::proxy {

class Http2ServerSession::Stream : public Http2OutBody,
                                   public ResponseEncoder,
                                   public Deletable,
                                   public Pooled {
 public:
  Stream(Http2ServerSession& session, int32_t id) : session_(session), id_(id) {}

  // ResponseEncoder
  void encodeHeaders(ResponseHead& head, bool endStream) override {
    char status[4];
    auto [end, ec] = std::to_chars(status, status + sizeof(status), head.status);
    auto& nva = session_.nva_;
    nva.clear();
    session_.pushField(":status", std::string_view(status, end - status));
    session_.appendFields(head.headers);
    responseStarted_ = true;
    int rc;
    if (endStream) {
      end_ = true;
      rc = nghttp2_submit_response(session_.session_, id_, nva.data(), nva.size(), nullptr);
    } else {
      nghttp2_data_provider p = provider(*this);
      rc = nghttp2_submit_response(session_.session_, id_, nva.data(), nva.size(), &p);
    }
    if (rc != 0) {
      // The stream cannot carry this head (it is going away, or memory ran out): reset it
      // rather than leave the client waiting for an answer that never comes.
      TETHER_LOG(kDebug, std::string("http2: cannot submit a response: ") + nghttp2_strerror(rc));
      nghttp2_submit_rst_stream(session_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    }
    session_.send();
  }
  void encodeData(std::string_view data, bool endStream) override {
    session_.queueData(id_, *this, data, endStream);
  }
  void encodeTrailers(const HeaderMap& trailers) override {
    session_.queueTrailers(id_, *this, trailers);
  }
  void readDisable(bool disable) override {
    if (disable) {
      ++readDisabled_;
      return;
    }
    if (readDisabled_ == 0 || --readDisabled_ > 0 || unconsumed_ == 0) return;
    nghttp2_session_consume(session_.session_, id_, unconsumed_);
    unconsumed_ = 0;
    session_.send();
  }
  void resetFromStream() override {
    nghttp2_submit_rst_stream(session_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    releaseActive();
    session_.send();
  }
  void enterTunnel() override {}  // CONNECT data already travels in DATA frames
  void onStreamComplete() override { releaseActive(); }

  void releaseActive() {
    if (active_) session_.worker_.deferDelete(std::move(active_));
  }
  /// Request body bytes delivered; the window reopens unless the stream is paused.
  void consumed(size_t len) {
    if (readDisabled_ > 0) {
      unconsumed_ += len;
    } else {
      nghttp2_session_consume(session_.session_, id_, len);
    }
  }

  Http2ServerSession& session_;
  int32_t id_;
  Stream* prev_ = nullptr;  // the session's list of open streams
  Stream* next_ = nullptr;
  std::unique_ptr<ActiveStream> active_;
  RequestHead head_;
  std::string cookies_;  // cookie crumbs (RFC 9113 §8.2.3), joined for HTTP/1.1
  HeaderMap trailersIn_;
  size_t headerBytes_ = 0;
  uint64_t bodyBytes_ = 0;
  bool headersTooLarge_ = false;
  bool responseStarted_ = false;
  bool requestEnded_ = false;
  int readDisabled_ = 0;
  size_t unconsumed_ = 0;

 protected:
  void onOutWatermark(bool aboveHigh) override {
    if (active_) active_->onDownstreamWatermark(aboveHigh);
  }
};

Http2ServerSession::Http2ServerSession(Worker& worker, TcpConnection& conn,
                                       const config::ListenerConfig& listener, std::string peer)
    : Http2Session(worker, conn),
      listener_(listener),
      settings_(worker.bootstrap().http2),
      peer_(std::move(peer)),
      controlBudget_(settings_.maxControlFrameBurst, settings_.maxControlFramesPerSecond),
      resetBudget_(settings_.maxResetBurst, settings_.maxResetsPerSecond) {}

Http2ServerSession::~Http2ServerSession() {
  // Streams still here were never closed by nghttp2 (the socket went first).
  for (Stream* s : openStreams()) delete s;
}

void Http2ServerSession::link(Stream* s) {
  s->next_ = streams_;
  if (streams_) streams_->prev_ = s;
  streams_ = s;
  ++streamCount_;
}

void Http2ServerSession::unlink(Stream* s) {
  if (s->prev_) {
    s->prev_->next_ = s->next_;
  } else {
    streams_ = s->next_;
  }
  if (s->next_) s->next_->prev_ = s->prev_;
  s->prev_ = s->next_ = nullptr;
  --streamCount_;
}

std::vector<Http2ServerSession::Stream*> Http2ServerSession::openStreams() const {
  std::vector<Stream*> out;
  for (Stream* s = streams_; s; s = s->next_) out.push_back(s);
  return out;
}

void Http2ServerSession::start() {
  // Responses to a client's streams arrive one upstream read at a time; one more poll before
  // writing lets the ones already on their way leave in the same write.
  afterPoll_ = true;
  init(true, settings_);
  idleSince_ = uv_now(worker_.loop());
  send();
}

void Http2ServerSession::fillCallbacks(nghttp2_session_callbacks* cb) {
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, onFrameSend);
}

void Http2ServerSession::onRead(const char* data, size_t len) {
  if (closing_) return;
  size_t valid = scanFrames(data, len);
  ssize_t rv = receive(data, valid);
  for (auto [id, code] : streamErrors_) {
    // Each costs a reset token, as the resets nghttp2 sends do: a client provoking them
    // without reading cannot grow the write buffer.
    if (!resetBudget_.take(uv_now(worker_.loop()))) {
      streamErrors_.clear();
      closeForAbuse("reset_flood");
      return;
    }
    // The stream may be idle, where nghttp2 will not send RST_STREAM; the frame is written
    // as is (whole frames only go between nghttp2's, so the order stays valid).
    const char rst[13] = {0,
                          0,
                          4,
                          NGHTTP2_RST_STREAM,
                          0,
                          static_cast<char>(id >> 24),
                          static_cast<char>(id >> 16),
                          static_cast<char>(id >> 8),
                          static_cast<char>(id),
                          0,
                          0,
                          0,
                          static_cast<char>(code)};
    conn_.write(std::string_view(rst, sizeof(rst)));
  }
  streamErrors_.clear();
  if (scanAbuse_) {
    closeForAbuse(scanAbuse_);
    return;
  }
  if (rv >= 0 && valid < len) {
    nghttp2_session_terminate_session(session_, scanError_);
    closing_ = true;
    closeAfterSend();
    return;
  }
  if (rv < 0) {
    TETHER_LOG(kDebug, "listener " + listener_.name + ": " + peer_ +
                           ": HTTP/2 connection error: " + nghttp2_strerror(static_cast<int>(rv)));
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
      code = NGHTTP2_ENHANCE_YOUR_CALM;
      worker_.stats().countPair(
          worker_.stats().http2Abuse, listener_.name,
          rv == NGHTTP2_ERR_FLOODED ? "outbound_queue_flood" : "continuation_flood");
    }
    // A fatal error leaves no GOAWAY queued; the peer still deserves to know why.
    nghttp2_session_terminate_session(session_, code);
    closing_ = true;
    closeAfterSend();
    return;
  }
  closeIfFinished();
}

void Http2ServerSession::closeIfFinished() {
  if (!closing_ && finished()) {
    closing_ = true;
    closeAfterSend();
  }
}

void Http2ServerSession::goAway(uint32_t errorCode) {
  goawaySent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), errorCode, nullptr, 0);
  send();
}

void Http2ServerSession::closeForAbuse(const char* kind) {
  if (closing_) return;
  TETHER_LOG(kWarn, "listener " + listener_.name + ": " + peer_ + ": HTTP/2 " + kind +
                        ": closing the connection");
  worker_.stats().countPair(worker_.stats().http2Abuse, listener_.name, kind);
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  closing_ = true;
  closeAfterSend();
}

void Http2ServerSession::onDrain() {
  if (goawaySent_ || closing_) return;
  if (streamCount_ == 0) {
    goAway(NGHTTP2_NO_ERROR);
    closeIfFinished();
    return;
  }
  nghttp2_submit_shutdown_notice(session_);
  finalGoawayAt_ = uv_now(worker_.loop()) + 1000;
  send();
}

void Http2ServerSession::abortForShutdown() {
  if (closing_) return;
  for (Stream* s : openStreams()) {
    if (!s->active_) continue;
    if (!s->active_->responseStarted()) {
      s->active_->sendLocalReply(503, "draining\n", Reason::kDraining, nullptr);
    } else {
      s->active_->resetStream();
    }
  }
  if (!goawaySent_) goAway(NGHTTP2_NO_ERROR);
  closing_ = true;
  closeAfterSend();
}

void Http2ServerSession::onSweep(uint64_t now) {
  if (closing_) return;
  if (finalGoawayAt_ != 0 && now >= finalGoawayAt_) {
    finalGoawayAt_ = 0;
    goAway(NGHTTP2_NO_ERROR);
    closeIfFinished();
    return;
  }
  if (streamCount_ == 0 &&
      now >= idleSince_ + static_cast<uint64_t>(worker_.bootstrap().http.idleTimeout.count())) {
    goAway(NGHTTP2_NO_ERROR);
    closing_ = true;
    closeAfterSend();
  }
}

void Http2ServerSession::onReadEnd(int) { conn_.close(); }

void Http2ServerSession::onConnectionClosed() {
  closing_ = true;
  std::vector<Stream*> streams = openStreams();
  streams_ = nullptr;
  streamCount_ = 0;
  for (Stream* s : streams) {
    if (s->active_) s->active_->onDownstreamReset();
    s->releaseActive();
    nghttp2_session_set_stream_user_data(session_, s->id_, nullptr);
    worker_.deferDelete(std::unique_ptr<Deletable>(s));
  }
}

int Http2ServerSession::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Http2ServerSession*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (self->streamCount_ >= self->advertisedMaxStreams_) {
    // Over SETTINGS_MAX_CONCURRENT_STREAMS: refused, which tells the client it may retry
    // (RFC 9113 §5.1.2, §8.7). Each refusal costs a reset token, like any reset sent.
    if (!self->resetBudget_.take(uv_now(self->worker_.loop()))) {
      self->closeForAbuse("reset_flood");
      return 0;
    }
    nghttp2_submit_rst_stream(self->session_, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;  // no Stream: its header fields and frames are ignored
  }
  auto* s = new Stream(*self, frame->hd.stream_id);
  s->head_.headers.fields().reserve(16);  // one allocation for a typical head
  self->link(s);
  nghttp2_session_set_stream_user_data(self->session_, s->id_, s);
  self->worker_.stats().http2Streams++;
  return 0;
}

int Http2ServerSession::onHeader(nghttp2_session* session, const nghttp2_frame* frame,
                                 const uint8_t* name, size_t namelen, const uint8_t* value,
                                 size_t valuelen, uint8_t, void* user) {
  auto* self = static_cast<Http2ServerSession*>(user);
  auto* s =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s || s->headersTooLarge_) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  const auto& limits = self->worker_.bootstrap().http;
  // RFC 9113 §6.5.2 counts each field as name + value + 32 bytes.
  s->headerBytes_ += namelen + valuelen + 32;
  size_t fields = s->head_.headers.size() + s->trailersIn_.size();
  if (s->headerBytes_ > limits.maxRequestHeadersBytes || fields >= limits.maxRequestHeaders) {
    s->headersTooLarge_ = true;
    return 0;
  }
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    s->trailersIn_.add(n, v);
    return 0;
  }
  if (!n.empty() && n[0] == ':') {
    if (n == ":method") {
      s->head_.method.assign(v);
    } else if (n == ":path") {
      s->head_.path.assign(v);
    } else if (n == ":authority") {
      s->head_.authority.assign(v);
    }
    return 0;  // :scheme (and :protocol, unsupported) are not forwarded
  }
  if (n == "cookie") {
    if (!s->cookies_.empty()) s->cookies_ += "; ";
    s->cookies_.append(v);
    return 0;
  }
  if (n == "host") {
    if (s->head_.authority.empty()) s->head_.authority.assign(v);
    return 0;
  }
  if (n == "te") return 0;  // hop-by-hop ("trailers", checked by nghttp2); re-added for gRPC
  s->head_.headers.add(n, v);
  return 0;
}

int Http2ServerSession::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                    void* user) {
  auto* self = static_cast<Http2ServerSession*>(user);
  uint64_t now = uv_now(self->worker_.loop());
  bool endStream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  switch (frame->hd.type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) break;
      // (PRIORITY frames, which nghttp2 skips without a callback, are counted in scanFrames.)
      if (!self->controlBudget_.take(now)) self->closeForAbuse("control_frame_flood");
      break;
    case NGHTTP2_DATA: {
      auto* s =
          static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (frame->hd.length == 0 && !endStream && !self->controlBudget_.take(now)) {
        self->closeForAbuse("empty_frame_flood");
        break;
      }
      if (!s || !endStream) break;
      s->requestEnded_ = true;
      if (s->active_) {
        self->bodyScratch_.clear();
        s->active_->decodeData(self->bodyScratch_, true);
      }
      break;
    }
    case NGHTTP2_HEADERS: {
      auto* s =
          static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
      if (!s) break;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        self->dispatchHeaders(*s, endStream);
      } else if (endStream) {
        s->requestEnded_ = true;
        if (s->headersTooLarge_) {
          if (!s->responseStarted_) self->replyDirect(*s, Reason::kHeadersTooLarge);
        } else if (s->active_) {
          s->active_->decodeTrailers(std::move(s->trailersIn_));
        }
      }
      break;
    }
    default:
      break;
  }
  return 0;
}

void Http2ServerSession::dispatchHeaders(Stream& s, bool endStream) {
  s.requestEnded_ = endStream;
  if (s.headersTooLarge_) {
    replyDirect(s, Reason::kHeadersTooLarge);
    return;
  }
  RequestHead& head = s.head_;
  if (!head.authority.empty() && !validAuthority(head.authority, head.method == "CONNECT")) {
    replyDirect(s, Reason::kBadRequest);
    return;
  }
  toLowerInPlace(head.authority);
  if (!s.cookies_.empty()) head.headers.add("cookie", s.cookies_);
  if (head.method == "CONNECT") {
    head.path = head.authority;
    head.upgrade = true;
  }
  head.versionMinor = 1;
  if (const HeaderString* cl = head.headers.get("content-length")) {
    uint64_t n = 0;
    std::from_chars(cl->data(), cl->data() + cl->size(), n);
    uint64_t max = worker_.bootstrap().http.maxRequestBodyBytes;
    if (max != 0 && n > max) {
      replyDirect(s, Reason::kBodyTooLarge);
      return;
    }
  }
  s.active_ = std::make_unique<ActiveStream>(
      worker_, worker_.snapshot(), s,
      StreamInfo::forConnection(listener_, peer_, conn_.tlsPeerIdentity(), originalDestination_));
  s.active_->decodeHeaders(std::move(head), endStream);
}

void Http2ServerSession::replyDirect(Stream& s, Reason reason) {
  int status = defaultStatus(reason);
  worker_.stats().recordLocal(listener_.direction, status, reason);
  ResponseHead head;
  head.status = status;
  std::string body = std::string(reasonName(reason)) + "\n";
  head.headers.add("content-type", "text/plain");
  head.headers.add("content-length", std::to_string(body.size()));
  head.headers.add("x-tether-reason", std::string(reasonName(reason)));
  s.encodeHeaders(head, false);
  s.encodeData(body, true);
}

int Http2ServerSession::onDataChunk(nghttp2_session* session, uint8_t, int32_t streamId,
                                    const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<Http2ServerSession*>(user);
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, streamId));
  if (!s || !s->active_) {
    // Nobody reads this body any more (the response is done): reopen the window at once.
    nghttp2_session_consume(session, streamId, len);
    return 0;
  }
  s->bodyBytes_ += len;
  uint64_t max = self->worker_.bootstrap().http.maxRequestBodyBytes;
  if (max != 0 && s->bodyBytes_ > max && !s->responseStarted_) {
    nghttp2_session_consume(session, streamId, len);
    s->active_->sendLocalReply(413, "body_too_large\n", Reason::kBodyTooLarge, nullptr);
    return 0;
  }
  self->bodyScratch_.assign(reinterpret_cast<const char*>(data), len);
  s->active_->decodeData(self->bodyScratch_, false);
  s->consumed(len);
  return 0;
}

int Http2ServerSession::onFrameSend(nghttp2_session* session, const nghttp2_frame* frame,
                                    void* user) {
  if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  auto* s =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  // The response is complete but the request is still coming: tell the client to stop
  // (RFC 9113 §8.1), so the stream does not linger half-closed.
  if (s && !s->requestEnded_) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_NO_ERROR);
  }
  (void)user;
  return 0;
}

int Http2ServerSession::onStreamClose(nghttp2_session* session, int32_t streamId,
                                      uint32_t errorCode, void* user) {
  auto* self = static_cast<Http2ServerSession*>(user);
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, streamId));
  if (!s) return 0;
  bool premature = s->active_ != nullptr;
  if (s->active_) s->active_->onDownstreamReset();
  s->releaseActive();
  self->unlink(s);
  nghttp2_session_set_stream_user_data(session, streamId, nullptr);
  self->worker_.deferDelete(std::unique_ptr<Deletable>(s));
  if (self->streamCount_ == 0) self->idleSince_ = uv_now(self->worker_.loop());
  // Streams reset before their response completed, by either side, cost a token: a client
  // that opens and cancels streams (rapid reset) or provokes resets runs out of them.
  if (premature && errorCode != NGHTTP2_NO_ERROR &&
      !self->resetBudget_.take(uv_now(self->worker_.loop()))) {
    self->closeForAbuse("reset_flood");
  }
  return 0;
}

}  // namespace tether::proxy
