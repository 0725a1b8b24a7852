#include "proxy/upstream/http2_client.h"

#include <algorithm>
#include <charconv>

#include "proxy/common/log.h"
#include "proxy/upstream/upstream_pool.h"

namespace tether::proxy {

// --- Http2UpstreamStream ---------------------------------------------------------------

void Http2UpstreamStream::sendHead(const RequestHead& r, std::string_view authority,
                                   const RequestExtras& extras, bool endStream) {
  auto& nva = conn_.nva_;
  nva.clear();
  conn_.pushField(":method", r.method);
  conn_.pushField(":scheme", conn_.tcp_.tls() ? "https" : "http");
  conn_.pushField(":authority", r.authority.empty() ? authority : std::string_view(r.authority));
  conn_.pushField(":path", r.path);
  conn_.appendFields(r.headers);
  // gRPC servers require "te: trailers" (RFC 9113 §8.2.2 allows exactly that value).
  if (isGrpc(r.headers)) conn_.pushField("te", "trailers");
  char timeout[24], attempt[24];
  if (extras.timeoutMs > 0) {
    auto [end, ec] = std::to_chars(timeout, timeout + sizeof(timeout), extras.timeoutMs);
    conn_.pushField(kTimeoutHeader, std::string_view(timeout, end - timeout));
  }
  if (extras.attempt > 1) {
    auto [end, ec] = std::to_chars(attempt, attempt + sizeof(attempt), extras.attempt);
    conn_.pushField(kAttemptHeader, std::string_view(attempt, end - attempt));
  }
  if (endStream) {
    end_ = true;
    id_ = nghttp2_submit_request(conn_.session_, nullptr, nva.data(), nva.size(), nullptr, this);
  } else {
    nghttp2_data_provider p = Http2ClientConnection::provider(*this);
    id_ = nghttp2_submit_request(conn_.session_, nullptr, nva.data(), nva.size(), &p, this);
  }
  if (id_ < 0) {
    // The session cannot take a stream (it is going away): the caller sees a reset.
    UpstreamClient* c = client_;
    client_ = nullptr;
    if (c) c->onUpstreamFailure(Reason::kUpstreamReset, true);
    return;
  }
  conn_.send();
}

void Http2UpstreamStream::sendData(std::string_view data, bool endStream) {
  if (id_ < 0 || closedByNghttp2_) return;
  conn_.queueData(id_, *this, data, endStream);
}

void Http2UpstreamStream::sendTrailers(const HeaderMap& trailers) {
  if (id_ < 0 || closedByNghttp2_) return;
  conn_.queueTrailers(id_, *this, trailers);
}

void Http2UpstreamStream::readDisable(bool disable) {
  if (disable) {
    ++readDisabled_;
    return;
  }
  if (readDisabled_ == 0 || --readDisabled_ > 0 || unconsumed_ == 0) return;
  if (!closedByNghttp2_) nghttp2_session_consume(conn_.session_, id_, unconsumed_);
  unconsumed_ = 0;
  conn_.send();
}

void Http2UpstreamStream::cancel() {
  if (id_ >= 0 && !closedByNghttp2_) {
    nghttp2_submit_rst_stream(conn_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
    conn_.send();
  }
}

void Http2UpstreamStream::close() {
  client_ = nullptr;
  cancel();
  conn_.onStreamReleased(this);
}

void Http2UpstreamStream::release(bool requestComplete) {
  client_ = nullptr;
  // A stream whose exchange did not finish cleanly is reset; the connection stays.
  if (!(requestComplete && responseComplete_)) cancel();
  conn_.onStreamReleased(this);
}

// --- Http2ClientConnection ---------------------------------------------------------------

Http2ClientConnection::Http2ClientConnection(Worker& worker, Http2Pool& pool)
    : Http2Session(worker, tcp_), pool_(pool), tcp_(worker, *this), timer_(worker.loop(), [this] {
        if (!connected_) {
          failStreams(Reason::kUpstreamConnectFailure, false);
          closeNow();
        } else if (streams_.empty()) {
          closeNow();  // idle too long
        }
      }) {
  worker_.stats().upstreamConnectionsActive++;
  worker_.stats().upstreamConnectionsTotal++;
  tcp_.setFlushOncePerTurn();
  init(false, worker.bootstrap().http2);
}

Http2ClientConnection::~Http2ClientConnection() {
  for (Http2UpstreamStream* s : streams_) delete s;
}

int Http2ClientConnection::connect(const sockaddr* addr, config::Duration timeout) {
  timer_.start(timeout);
  return tcp_.connect(addr);
}

bool Http2ClientConnection::hasCapacity() const {
  if (closed_ || goawayReceived_) return false;
  uint32_t max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  // Until the peer's SETTINGS arrive, assume the common default rather than "unlimited".
  if (!connected_ || max > 1000) max = std::min<uint32_t>(max, 100);
  return streams_.size() < max;
}

Http2UpstreamStream* Http2ClientConnection::newStream(UpstreamClient& client, bool headRequest,
                                                      bool& ready) {
  auto* s = new Http2UpstreamStream(*this, client, headRequest);
  s->head_.headers.fields().reserve(16);
  streams_.insert(s);
  timer_.stop();
  ready = connected_;
  if (!connected_) waiting_.push_back(s);
  if (connected_) worker_.stats().upstreamConnectionsReused++;
  return s;
}

void Http2ClientConnection::onConnected(int status) {
  timer_.stop();
  if (status != 0) {
    failStreams(Reason::kUpstreamConnectFailure, false);
    closeNow();
    return;
  }
  connected_ = true;
  send();  // the client preface and SETTINGS
  std::vector<Http2UpstreamStream*> waiting;
  waiting.swap(waiting_);
  for (Http2UpstreamStream* s : waiting) {
    if (s->client_) s->client_->onUpstreamReady();
  }
  if (streams_.empty()) armIdle();
}

bool Http2ClientConnection::onTlsHandshake(std::string_view alpn) {
  if (pool_.probeKey().empty()) return true;
  bool h2 = alpn == "h2";
  worker_.pools().setNegotiatedHttp2(pool_.probeKey(), h2);
  if (h2) return true;
  // The endpoint speaks HTTP/1.1: nothing was sent (the held preface is dropped), so every
  // request here goes back to its router to be sent again, now to the HTTP/1.1 pool.
  std::vector<Http2UpstreamStream*> streams(streams_.begin(), streams_.end());
  for (Http2UpstreamStream* s : streams) {
    if (UpstreamClient* c = s->client_) {
      s->client_ = nullptr;
      c->onUpstreamRefused();
    }
  }
  closed_ = true;
  timer_.stop();
  return false;
}

void Http2ClientConnection::armIdle() {
  if (!closed_) timer_.start(worker_.bootstrap().upstream.idleTimeout);
}

void Http2ClientConnection::failStreams(Reason reason, bool reused) {
  std::vector<Http2UpstreamStream*> streams(streams_.begin(), streams_.end());
  for (Http2UpstreamStream* s : streams) {
    UpstreamClient* c = s->client_;
    if (!c) continue;
    s->client_ = nullptr;
    if (s->finalHeaders_) {
      c->onUpstreamReset();
    } else {
      c->onUpstreamFailure(reason, reused);
    }
  }
}

void Http2ClientConnection::onStreamReleased(Http2UpstreamStream* s) {
  // The object stays until nghttp2 closes the stream (its data source may still be read);
  // one that never got an id, or is closed already, goes now.
  if (s->id_ < 0 || s->closedByNghttp2_) {
    streams_.erase(s);
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), s), waiting_.end());
    worker_.deferDelete(std::unique_ptr<Deletable>(s));
    if (streams_.empty()) afterSend();
  }
}

void Http2ClientConnection::closeNow() {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  tcp_.close();
}

void Http2ClientConnection::onRead(const char* data, size_t len) {
  if (closed_) return;
  if (receive(data, len) < 0) {
    TETHER_LOG(kDebug, "upstream " + pool_.address().toString() + ": HTTP/2 connection error");
    failStreams(Reason::kUpstreamReset, servedStreams_);
    closeNow();
  }
}

void Http2ClientConnection::onReadEnd(int) {
  failStreams(Reason::kUpstreamReset, servedStreams_);
  closeNow();
}

void Http2ClientConnection::afterSend() {
  if (closed_) return;
  if (finished() || (goawayReceived_ && streams_.empty())) {
    closeAfterSend();
    closed_ = true;
    return;
  }
  if (streams_.empty() && connected_) armIdle();
}

void Http2ClientConnection::onClosed() {
  closed_ = true;
  if (budget_) budget_->fetch_sub(1, std::memory_order_relaxed);
  failStreams(Reason::kUpstreamReset, servedStreams_);
  for (Http2UpstreamStream* s : streams_) {
    s->closedByNghttp2_ = true;
    worker_.deferDelete(std::unique_ptr<Deletable>(s));
  }
  streams_.clear();
  worker_.stats().upstreamConnectionsActive--;
  pool_.onConnectionClosed(this);
  worker_.deferDelete(std::unique_ptr<Deletable>(this));
}

void Http2ClientConnection::fillCallbacks(nghttp2_session_callbacks* cb) {
  nghttp2_session_callbacks_set_on_header_callback(cb, onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, onStreamClose);
}

int Http2ClientConnection::onHeader(nghttp2_session* session, const nghttp2_frame* frame,
                                    const uint8_t* name, size_t namelen, const uint8_t* value,
                                    size_t valuelen, uint8_t, void*) {
  auto* s = static_cast<Http2UpstreamStream*>(
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (s->finalHeaders_) {
    s->trailers_.add(n, v);
  } else if (n == ":status") {
    int status = 0;
    std::from_chars(v.data(), v.data() + v.size(), status);
    s->head_.status = status;
  } else if (n[0] != ':') {
    s->head_.headers.add(n, v);
  }
  return 0;
}

int Http2ClientConnection::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                       void* user) {
  auto* self = static_cast<Http2ClientConnection*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // No new streams here; those above last_stream_id are closed with REFUSED_STREAM by
    // nghttp2 (and retried by their routers where possible).
    self->goawayReceived_ = true;
    return 0;
  }
  bool endStream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  auto* s = static_cast<Http2UpstreamStream*>(
      nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (!s->finalHeaders_) {
      if (s->head_.status >= 100 && s->head_.status < 200) {
        s->head_ = ResponseHead();  // interim responses are not passed on
        return 0;
      }
      s->finalHeaders_ = true;
      self->servedStreams_ = true;
      if (endStream || s->headRequest_) s->responseComplete_ = true;
      if (s->client_) s->client_->onUpstreamHeaders(s->head_, s->responseComplete_);
    } else if (!s->responseComplete_) {
      s->responseComplete_ = true;
      if (s->client_) s->client_->onUpstreamTrailers(s->trailers_);
    }
  } else if (frame->hd.type == NGHTTP2_DATA && endStream && !s->responseComplete_) {
    s->responseComplete_ = true;
    if (s->client_) {
      self->scratch_.clear();
      s->client_->onUpstreamData(self->scratch_, true);
    }
  }
  return 0;
}

int Http2ClientConnection::onDataChunk(nghttp2_session* session, uint8_t, int32_t streamId,
                                       const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<Http2ClientConnection*>(user);
  auto* s =
      static_cast<Http2UpstreamStream*>(nghttp2_session_get_stream_user_data(session, streamId));
  if (!s || !s->client_ || s->responseComplete_) {
    nghttp2_session_consume(session, streamId, len);
    return 0;
  }
  self->scratch_.assign(reinterpret_cast<const char*>(data), len);
  s->client_->onUpstreamData(self->scratch_, false);
  if (s->readDisabled_ > 0) {
    s->unconsumed_ += len;
  } else {
    nghttp2_session_consume(session, streamId, len);
  }
  return 0;
}

int Http2ClientConnection::onStreamClose(nghttp2_session* session, int32_t streamId,
                                         uint32_t errorCode, void* user) {
  auto* self = static_cast<Http2ClientConnection*>(user);
  auto* s =
      static_cast<Http2UpstreamStream*>(nghttp2_session_get_stream_user_data(session, streamId));
  if (!s) return 0;
  s->closedByNghttp2_ = true;
  nghttp2_session_set_stream_user_data(session, streamId, nullptr);
  if (UpstreamClient* c = s->client_; c && !s->responseComplete_) {
    s->client_ = nullptr;
    if (s->finalHeaders_) {
      c->onUpstreamReset();
    } else if (errorCode == NGHTTP2_REFUSED_STREAM) {
      // REFUSED_STREAM (nghttp2 also closes streams above a GOAWAY's last id with it)
      // promises the upstream did nothing with the request.
      c->onUpstreamRefused();
    } else {
      c->onUpstreamFailure(Reason::kUpstreamReset, self->servedStreams_);
    }
  }
  if (!s->client_) {
    self->streams_.erase(s);
    self->worker_.deferDelete(std::unique_ptr<Deletable>(s));
  }
  return 0;
}

// --- Http2Pool ---------------------------------------------------------------------------

Http2Pool::Http2Pool(Worker& worker, UpstreamTarget target)
    : worker_(worker), target_(std::move(target)) {}

Http2Pool::~Http2Pool() { closeAll(); }

Http2UpstreamStream* Http2Pool::acquire(UpstreamClient& client, bool headRequest,
                                        config::Duration connectTimeout,
                                        const ConnectionBudget& budget, Lent& how) {
  bool ready = false;
  Http2UpstreamStream* s = nullptr;
  for (Http2ClientConnection* c : conns_) {
    if (c->hasCapacity()) {
      s = c->newStream(client, headRequest, ready);
      break;
    }
  }
  if (!s) {
    if (!target_.socketAddress()) {
      how = Lent::kFailed;
      return nullptr;
    }
    if (!budget.take(conns_.empty())) {
      how = Lent::kOverflow;
      return nullptr;
    }
    auto* c = new Http2ClientConnection(worker_, *this);
    c->budget_ = budget.open;  // given back when the connection closes
    conns_.push_back(c);
    target_.prepare(c->connection());
    if (c->connect(target_.socketAddress(), connectTimeout) != 0) {
      c->closeNow();  // frees itself in its close callback
      how = Lent::kFailed;
      return nullptr;
    }
    s = c->newStream(client, headRequest, ready);
  }
  how = ready ? Lent::kReady : Lent::kConnecting;
  return s;
}

size_t Http2Pool::activeStreams() const {
  size_t n = 0;
  for (const Http2ClientConnection* c : conns_) n += c->streamCount();
  return n;
}

void Http2Pool::onConnectionClosed(Http2ClientConnection* conn) {
  conns_.erase(std::remove(conns_.begin(), conns_.end(), conn), conns_.end());
}

void Http2Pool::closeAll() {
  std::vector<Http2ClientConnection*> conns(conns_);
  for (Http2ClientConnection* c : conns) c->closeNow();
}

}  // namespace tether::proxy
