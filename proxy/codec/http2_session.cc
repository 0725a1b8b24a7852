#include "proxy/codec/http2_session.h"

#include <algorithm>
#include <cstring>

#include "proxy/common/log.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

bool isConnectionSpecificField(std::string_view name) {
  // RFC 9113 §8.2.2; Trailer is end-to-end in HTTP/2 and goes through.
  return (isHopByHopField(name) && name != "trailer") || name == "host";
}

Http2Session::Http2Session(Worker& worker, TcpConnection& conn)
    : worker_(worker),
      conn_(conn),
      lowWatermark_(worker.lowWatermark()),
      highWatermark_(worker.highWatermark()) {}

Http2Session::~Http2Session() {
  if (sendScheduled_) worker_.cancelTurnHook(this);
  if (session_) nghttp2_session_del(session_);
}

void Http2Session::init(bool server, const config::Http2Settings& s) {
  // These fail only when memory is exhausted (NGHTTP2_ERR_NOMEM).
  nghttp2_session_callbacks* cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) fatal("nghttp2: cannot allocate callbacks");
  nghttp2_session_callbacks_set_send_callback(cb, onSend);
  nghttp2_session_callbacks_set_send_data_callback(cb, onSendData);
  fillCallbacks(cb);
  nghttp2_option* opt;
  if (nghttp2_option_new(&opt) != 0) fatal("nghttp2: cannot allocate options");
  // Window updates follow what the other side of the proxy has taken (flow control).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, s.maxContinuations);
  // nghttp2's own RST_STREAM limit is a backstop at twice Tether's, which also counts the
  // resets Tether sends (see Http2ServerSession::onStreamClose) and names the cause.
  nghttp2_option_set_stream_reset_rate_limit(opt, 2ull * s.maxResetBurst,
                                             2ull * s.maxResetsPerSecond);
  nghttp2_option_set_max_outbound_ack(opt, s.maxOutboundControlFrames);
  nghttp2_option_set_max_settings(opt, s.maxSettingsEntries);
  // Tether ignores stream priorities (RFC 9113 deprecates them).
  nghttp2_option_set_server_fallback_rfc7540_priorities(opt, 0);
  int rc = server ? nghttp2_session_server_new3(&session_, cb, this, opt, pool::nghttp2Allocator())
                  : nghttp2_session_client_new3(&session_, cb, this, opt, pool::nghttp2Allocator());
  if (rc != 0) fatal(std::string("nghttp2: cannot create a session: ") + nghttp2_strerror(rc));
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  // A client over SETTINGS_MAX_CONCURRENT_STREAMS may get its stream refused (REFUSED_STREAM,
  // retryable) rather than the connection closed (RFC 9113 §5.1.2), but nghttp2 closes the
  // connection once the limit is acknowledged. So nghttp2 holds a higher limit, the client
  // is told the configured one (onSend rewrites it), and the server session refuses the
  // streams in between. Past the higher one (a client opening hundreds of streams in one
  // read) the connection error stands.
  uint32_t maxStreams = 100;
  if (server) {
    advertisedMaxStreams_ = s.maxConcurrentStreams;
    maxStreams = static_cast<uint32_t>(
        std::min<uint64_t>(2ull * s.maxConcurrentStreams + 100, (1u << 31) - 1));
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, maxStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s.initialStreamWindow},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  size_t n = sizeof(iv) / sizeof(iv[0]);
  if (server) {
    // ENABLE_PUSH is a client-only setting; a server sending it is a protocol error.
    iv[2] = iv[3];
    --n;
  }
  // Both fail only on invalid values (the loader bounds every setting) or without memory.
  if (int rc = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, n); rc != 0) {
    fatal(std::string("nghttp2: cannot queue SETTINGS: ") + nghttp2_strerror(rc));
  }
  if (int rc = nghttp2_session_set_local_window_size(
          session_, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(s.initialConnectionWindow));
      rc != 0) {
    fatal(std::string("nghttp2: cannot set the connection window: ") + nghttp2_strerror(rc));
  }
}

ssize_t Http2Session::receive(const char* data, size_t len) {
  inNghttp2_ = true;
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  inNghttp2_ = false;
  send();
  return rv;
}

void Http2Session::send() {
  if (inNghttp2_) {
    sendWanted_ = true;
    return;
  }
  if (!sendScheduled_) {
    sendScheduled_ = true;
    worker_.scheduleTurnHook(this, afterPoll_);
  }
}

void Http2Session::onTurnEnd() {
  sendScheduled_ = false;
  do {
    sendWanted_ = false;
    inNghttp2_ = true;
    int rc = nghttp2_session_send(session_);
    inNghttp2_ = false;
    if (rc != 0) {
      // Only fatal errors come back here (a callback failed, memory ran out): the session
      // cannot go on, so neither can the connection.
      TETHER_LOG(kDebug, std::string("http2: send failed: ") + nghttp2_strerror(rc));
      conn_.close();
      return;
    }
  } while (sendWanted_ && !writeBlocked_);
  afterSend();
  if (closeWanted_) conn_.closeAfterFlush();
}

void Http2Session::closeAfterSend() {
  closeWanted_ = true;
  send();
}

void Http2Session::onWriteWatermark(bool aboveHigh) {
  if (aboveHigh || !writeBlocked_) return;
  writeBlocked_ = false;
  send();
}

bool Http2Session::blocked() {
  // Closing flushes everything regardless: the last frames (GOAWAY) must not wait.
  if (closeWanted_ || conn_.bufferedBytes() < highWatermark_) return false;
  writeBlocked_ = true;
  return true;
}

bool Http2Session::finished() const {
  return !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
}

ssize_t Http2Session::onSend(nghttp2_session*, const uint8_t* data, size_t len, int, void* user) {
  auto* self = static_cast<Http2Session*>(user);
  if (self->blocked()) return NGHTTP2_ERR_WOULDBLOCK;
  std::string_view out(reinterpret_cast<const char*>(data), len);
  if (!self->settingsSent_) {
    self->settingsSent_ = true;
    if (self->advertisedMaxStreams_ != 0) {
      self->writeFirstSettings(out);
      return static_cast<ssize_t>(len);
    }
  }
  self->conn_.write(out);
  return static_cast<ssize_t>(len);
}

void Http2Session::writeFirstSettings(std::string_view bytes) {
  // The server's first frame is the SETTINGS submitted in init(), whole: 9 octets of header,
  // then 6-octet entries (RFC 9113 §6.5.1).
  std::string frame(bytes);
  size_t payload = frame.size() >= 9 ? (size_t{static_cast<uint8_t>(frame[0])} << 16) |
                                           (size_t{static_cast<uint8_t>(frame[1])} << 8) |
                                           static_cast<uint8_t>(frame[2])
                                     : 0;
  if (frame.size() >= 9 + payload && frame[3] == NGHTTP2_SETTINGS) {
    for (size_t at = 9; at + 6 <= 9 + payload; at += 6) {
      uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(frame[at]) << 8) |
                                          static_cast<uint8_t>(frame[at + 1]));
      if (id != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
      for (int k = 0; k < 4; ++k) {
        frame[at + 2 + k] = static_cast<char>(advertisedMaxStreams_ >> (24 - 8 * k));
      }
    }
  }
  conn_.write(frame);
}

int Http2Session::onSendData(nghttp2_session*, nghttp2_frame*, const uint8_t* framehd,
                             size_t length, nghttp2_data_source* source, void* user) {
  auto* self = static_cast<Http2Session*>(user);
  auto* body = static_cast<Http2OutBody*>(source->ptr);
  if (self->blocked()) return NGHTTP2_ERR_WOULDBLOCK;
  self->conn_.write(std::string_view(reinterpret_cast<const char*>(framehd), 9));
  // Tether sets no padding callback, so a DATA frame is its header and the payload.
  self->conn_.write(std::string_view(body->buf_.data() + body->off_, length));
  body->off_ += length;
  if (body->off_ == body->buf_.size()) {
    body->buf_.clear();
    body->off_ = 0;
  }
  if (body->outAboveHigh_ && body->queued() < self->lowWatermark_) {
    body->outAboveHigh_ = false;
    body->onOutWatermark(false);
  }
  return 0;
}

ssize_t Http2Session::onReadBody(nghttp2_session* session, int32_t streamId, uint8_t*,
                                 size_t length, uint32_t* flags, nghttp2_data_source* source,
                                 void* user) {
  auto* self = static_cast<Http2Session*>(user);
  auto* body = static_cast<Http2OutBody*>(source->ptr);
  size_t avail = body->queued();
  if (avail == 0 && !body->end_) {
    body->deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = std::min(avail, length);
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (n == avail && body->end_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (body->hasTrailers_) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      self->nva_.clear();
      self->appendFields(body->trailers_);
      if (nghttp2_submit_trailer(session, streamId, self->nva_.data(), self->nva_.size()) != 0) {
        // Without its trailers the stream could never end: reset it instead.
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    }
  }
  return static_cast<ssize_t>(n);
}

nghttp2_data_provider Http2Session::provider(Http2OutBody& body) {
  nghttp2_data_provider p;
  p.source.ptr = &body;
  p.read_callback = onReadBody;
  return p;
}

void Http2Session::queueData(int32_t streamId, Http2OutBody& body, std::string_view data,
                             bool end) {
  body.buf_.append(data);
  if (end) body.end_ = true;
  if (!body.outAboveHigh_ && body.queued() > highWatermark_) {
    body.outAboveHigh_ = true;
    body.onOutWatermark(true);
  }
  if (body.deferred_ && (!data.empty() || end)) {
    body.deferred_ = false;
    // Fails only for a stream already gone, which has nothing left to send.
    nghttp2_session_resume_data(session_, streamId);
  }
  send();
}

void Http2Session::queueTrailers(int32_t streamId, Http2OutBody& body, const HeaderMap& trailers) {
  body.trailers_ = trailers;
  body.hasTrailers_ = true;
  queueData(streamId, body, {}, true);
}

void Http2Session::pushField(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;
  nva_.push_back(nv);
}

void Http2Session::appendFields(const HeaderMap& headers) {
  for (const auto& f : headers) {
    if (isConnectionSpecificField(f.name)) continue;
    pushField(f.name, f.value);
  }
}

}  // namespace tether::proxy
