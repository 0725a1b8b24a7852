#include "control/channel.h"

#include <unistd.h>

#include <cstring>
#include <vector>

#include "proxy/common/log.h"

namespace tether::control {

namespace {

constexpr int32_t kWindow = 16 << 20;  // a big snapshot flows without waiting on updates

struct WriteReq {
  uv_write_t req;
  std::string data;
  Channel* channel;
};

// `value` must outlive the submit call: a literal, or a member.
nghttp2_nv header(const char* name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

Channel::Channel(uv_loop_t* loop, Role role, Handler& handler)
    : loop_(loop), role_(role), handler_(handler) {}

Channel::~Channel() {
  if (session_) nghttp2_session_del(session_);
}

int Channel::connect(const config::Address& address) {
  sockaddr_storage ss{};
  if (uv_ip4_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
    return UV_EINVAL;
  }
  authority_ = address.toString();
  uv_tcp_init(loop_, &tcp_);
  tcpInitialized_ = true;
  tcp_.data = this;
  connectReq_.data = this;
  int rc = uv_tcp_connect(&connectReq_, &tcp_, reinterpret_cast<const sockaddr*>(&ss),
                          [](uv_connect_t* req, int status) {
                            auto* self = static_cast<Channel*>(req->data);
                            if (status != 0) {
                              self->close(std::string("connect: ") + uv_strerror(status));
                              return;
                            }
                            self->startSession();
                          });
  if (rc != 0) close(std::string("connect: ") + uv_strerror(rc));
  return 0;
}

int Channel::adopt(int fd) {
  uv_tcp_init(loop_, &tcp_);
  tcpInitialized_ = true;
  tcp_.data = this;
  int rc = uv_tcp_open(&tcp_, fd);
  if (rc != 0) {
    ::close(fd);
    close(std::string("accept: ") + uv_strerror(rc));
    return rc;
  }
  startSession();
  return 0;
}

void Channel::startSession() {
  uv_tcp_nodelay(&tcp_, 1);
  // The session calls fail only when memory is exhausted.
  nghttp2_session_callbacks* cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) proxy::fatal("nghttp2: cannot allocate callbacks");
  nghttp2_session_callbacks_set_on_header_callback(cb, &Channel::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Channel::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Channel::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Channel::onStreamClose);
  int rc = role_ == Role::kClient ? nghttp2_session_client_new(&session_, cb, this)
                                  : nghttp2_session_server_new(&session_, cb, this);
  nghttp2_session_callbacks_del(cb);
  if (rc != 0)
    proxy::fatal(std::string("nghttp2: cannot create a session: ") + nghttp2_strerror(rc));
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 4},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kWindow}};
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2) != 0 ||
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kWindow * 4) != 0) {
    proxy::fatal("nghttp2: cannot queue the channel's SETTINGS");
  }
  if (role_ == Role::kClient) {
    std::vector<nghttp2_nv> nva = {header(":method", "POST"), header(":scheme", "http"),
                                   header(":authority", authority_), header(":path", kPath),
                                   header("content-type", "application/x-ndjson")};
    nghttp2_data_provider body{};
    body.read_callback = &Channel::readBody;
    streamId_ = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &body, this);
    if (streamId_ < 0) {
      close(std::string("http2: cannot open the stream: ") +
            nghttp2_strerror(static_cast<int>(streamId_)));
      return;
    }
  }
  rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        thread_local char buffer[64 * 1024];
        *buf = uv_buf_init(buffer, sizeof(buffer));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        static_cast<Channel*>(s->data)->onRead(n, buf);
      });
  if (rc != 0) {
    close(std::string("cannot read: ") + uv_strerror(rc));
    return;
  }
  flush();
}

void Channel::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    close(nread == UV_EOF ? "closed by peer" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread == 0 || closing_) return;
  inRecv_ = true;
  ssize_t rc =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buf->base), nread);
  inRecv_ = false;
  if (closing_) return;
  if (rc < 0) {
    close(std::string("http2: ") + nghttp2_strerror(static_cast<int>(rc)));
    return;
  }
  flush();
}

void Channel::send(std::string json) {
  if (closing_) return;
  if (outPos_ == out_.size()) {
    out_.clear();
    outPos_ = 0;
  }
  out_ += json;
  out_ += '\n';
  if (session_ && streamId_ > 0) {
    nghttp2_session_resume_data(session_, streamId_);
    // nghttp2 must not serialize from inside its own callbacks (a message answered while
    // one is being received): onRead flushes once mem_recv returns.
    if (!inRecv_) flush();
  }
}

ssize_t Channel::readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t*,
                          nghttp2_data_source*, void* user) {
  auto* self = static_cast<Channel*>(user);
  size_t n = std::min(length, self->out_.size() - self->outPos_);
  if (n == 0) return NGHTTP2_ERR_DEFERRED;  // the stream never ends on its own
  std::memcpy(buf, self->out_.data() + self->outPos_, n);
  self->outPos_ += n;
  return static_cast<ssize_t>(n);
}

void Channel::flush() {
  if (!session_ || closing_) return;
  std::string chunk;
  while (true) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      close(std::string("http2: ") + nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    if (n == 0) break;
    chunk.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (chunk.empty()) return;
  auto* w = new WriteReq{{}, std::move(chunk), this};
  w->req.data = w;
  writing_ += w->data.size();
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<WriteReq*>(req->data);
                      Channel* self = w->channel;
                      self->writing_ -= w->data.size();
                      delete w;
                      if (status != 0 && status != UV_ECANCELED) {
                        self->close(std::string("write: ") + uv_strerror(status));
                      }
                    });
  if (rc != 0) {
    writing_ -= w->data.size();
    delete w;
    close(std::string("write: ") + uv_strerror(rc));
  }
}

int Channel::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* self = static_cast<Channel*>(user);
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (self->role_ == Role::kClient) {
    if (n == ":status") self->status_ = std::string(v);
    return 0;
  }
  if (frame->hd.type == NGHTTP2_HEADERS && n == ":path" && v != kPath) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets that stream
  }
  return 0;
}

int Channel::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<Channel*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat == NGHTTP2_HCAT_HEADERS) return 0;
  if (self->role_ == Role::kClient) {
    if (frame->hd.stream_id != self->streamId_) return 0;
    if (self->status_ != "200") {
      self->close("control plane answered " + self->status_);
      return 0;
    }
    self->open_ = true;
    self->handler_.onOpen(*self);
    return 0;
  }
  if (self->streamId_ > 0) {
    // One conversation per connection.
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  self->streamId_ = frame->hd.stream_id;
  std::vector<nghttp2_nv> nva = {header(":status", "200"),
                                 header("content-type", "application/x-ndjson")};
  nghttp2_data_provider body{};
  body.read_callback = &Channel::readBody;
  if (nghttp2_submit_response(session, self->streamId_, nva.data(), nva.size(), &body) != 0) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;  // the session ends and the channel closes
  }
  self->open_ = true;
  self->handler_.onOpen(*self);
  return 0;
}

int Channel::onDataChunk(nghttp2_session*, uint8_t, int32_t stream, const uint8_t* data, size_t len,
                         void* user) {
  auto* self = static_cast<Channel*>(user);
  if (stream != self->streamId_ || self->closing_) return 0;
  self->received(reinterpret_cast<const char*>(data), len);
  return 0;
}

void Channel::received(const char* data, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i < len && !closing_; ++i) {
    if (data[i] != '\n') continue;
    std::string_view line(data + start, i - start);
    if (!in_.empty()) {
      in_.append(line);
      line = in_;
    }
    auto message = proxy::JsonValue::parse(line);
    if (!message || !message->isObject()) {
      close("malformed message");
      return;
    }
    handler_.onMessage(*this, *message);
    in_.clear();
    start = i + 1;
  }
  if (closing_) return;
  in_.append(data + start, len - start);
  if (in_.size() > (role_ == Role::kClient ? kMaxSnapshotBytes : kMaxSidecarMessageBytes)) {
    close("message too large");
  }
}

int Channel::onStreamClose(nghttp2_session*, int32_t stream, uint32_t error, void* user) {
  auto* self = static_cast<Channel*>(user);
  if (stream == self->streamId_) {
    self->close("stream closed (" + std::string(nghttp2_http2_strerror(error)) + ")");
  }
  return 0;
}

void Channel::close(const std::string& why) {
  if (closing_) return;
  closing_ = true;
  open_ = false;
  closeReason_ = why;
  if (!tcpInitialized_) {
    handler_.onClosed(*this, closeReason_);
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
    auto* self = static_cast<Channel*>(h->data);
    self->handler_.onClosed(*self, self->closeReason_);  // may delete self: last statement
  });
}

}  // namespace tether::control
