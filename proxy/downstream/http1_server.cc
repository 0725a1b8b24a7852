#include "proxy/downstream/http1_server.h"

#include "proxy/codec/http1_encoding.h"
#include "proxy/common/log.h"

namespace tether::proxy {

Http1ServerCodec::Http1ServerCodec(Worker& worker, TcpConnection& conn,
                                   const config::ListenerConfig& listener, const std::string& peer,
                                   std::shared_ptr<const config::EndpointConfig> originalEndpoint,
                                   uint64_t headersDeadline)
    : worker_(worker),
      conn_(conn),
      listener_(listener),
      peer_(peer),
      originalEndpoint_(std::move(originalEndpoint)),
      parser_(Http1Parser::Type::kRequest, *this,
              Http1Limits{worker.bootstrap().http.maxRequestHeadersBytes,
                          worker.bootstrap().http.maxRequestHeaders}),
      deadline_(headersDeadline) {}

Http1ServerCodec::~Http1ServerCodec() = default;

void Http1ServerCodec::closeNow() {
  if (closed_) return;
  closed_ = true;
  conn_.close();
}

void Http1ServerCodec::onConnectionClosed() {
  closed_ = true;
  timerKind_ = TimerKind::kNone;
  if (stream_) {
    stream_->onDownstreamReset();
    worker_.deferDelete(std::move(stream_));
  }
}

// Connection timeouts are deadlines checked by the worker's sweep (every 100 ms), not timers:
// arming one per request would cost a timer-heap insert and removal on every request.
void Http1ServerCodec::armHeaderTimer() {
  timerKind_ = TimerKind::kHeaders;
  deadline_ = uv_now(worker_.loop()) +
              static_cast<uint64_t>(worker_.bootstrap().http.requestHeadersTimeout.count());
}

void Http1ServerCodec::armIdleTimer() {
  timerKind_ = TimerKind::kIdle;
  deadline_ =
      uv_now(worker_.loop()) + static_cast<uint64_t>(worker_.bootstrap().http.idleTimeout.count());
}

void Http1ServerCodec::onSweep(uint64_t now) {
  if (timerKind_ == TimerKind::kNone || now < deadline_ || closed_) return;
  TimerKind kind = timerKind_;
  timerKind_ = TimerKind::kNone;
  if (kind == TimerKind::kHeaders && !parser_.idle()) {
    // A request head that never finishes (slowloris) gets 408 and the door.
    replyError(Reason::kRequestTimeout, "request headers timeout");
    return;
  }
  if (!stream_) closeNow();
}

void Http1ServerCodec::onRead(const char* data, size_t len) {
  if (tunnel_) {
    if (stream_) {
      bodyScratch_.assign(data, len);
      stream_->decodeData(bodyScratch_, false);
    }
    return;
  }
  if (parserPaused_ || upgradePending_ || errorSent_) {
    // Pipelined bytes wait until the current response is out. Reading goes on (stopping
    // and restarting it costs two epoll_ctl per request) until a read's worth piles up.
    pending_.append(data, len);
    if (!pipelineReadPaused_ && pending_.size() >= Worker::kReadBufferSize) {
      pipelineReadPaused_ = true;
      conn_.readDisable(true);
    }
    return;
  }
  parse(data, len);
}

void Http1ServerCodec::parse(const char* data, size_t len) {
  if (timerKind_ == TimerKind::kIdle) armHeaderTimer();
  inParse_ = true;
  Http1Parser::Result r = parser_.execute(data, len);
  inParse_ = false;
  if (closed_) return;
  switch (r.status) {
    case Http1Parser::Status::kOk:
      break;
    case Http1Parser::Status::kPaused:
      pending_.assign(data + r.consumed, len - r.consumed);
      if (!stream_) {
        // The response finished during the pause's own callback chain: carry on now.
        resumeParsing();
      } else {
        parserPaused_ = true;
      }
      break;
    case Http1Parser::Status::kUpgrade:
      pending_.assign(data + r.consumed, len - r.consumed);
      if (stream_ && !tunnel_) {
        upgradePending_ = true;
        pipelineReadPaused_ = true;
        conn_.readDisable(true);
      } else if (tunnel_ && stream_ && !pending_.empty()) {
        std::string early;
        early.swap(pending_);
        stream_->decodeData(early, false);
      }
      break;
    case Http1Parser::Status::kError:
      replyError(parser_.errorReason(), parser_.errorMessage());
      break;
  }
  closeIfPeerDone();
}

void Http1ServerCodec::resumeParsing() {
  if (closed_ || stream_ || tunnel_) return;
  parser_.resume();
  std::string data;
  data.swap(pending_);
  if (!data.empty()) parse(data.data(), data.size());
}

void Http1ServerCodec::onReadEnd(int status) {
  if (tunnel_ && stream_) {
    std::string empty;
    stream_->decodeData(empty, true);
    return;
  }
  if (stream_ && !requestComplete_) {
    // The client hung up mid-request: nobody is left to answer.
    closeNow();
    return;
  }
  if (stream_) {
    // Half-closed after a full request: finish the response, and those of the requests
    // pipelined behind it (already read, as nginx answers them), then close.
    peerDone_ = true;
    return;
  }
  if (!parser_.idle()) parser_.finish();
  closeNow();
}

void Http1ServerCodec::onWriteWatermark(bool aboveHigh) {
  if (stream_) stream_->onDownstreamWatermark(aboveHigh);
}

bool Http1ServerCodec::buildRequestHead(Http1Message& m, RequestHead& head) {
  head.method = std::move(m.method);
  head.versionMinor = m.versionMinor;
  const HeaderString* host = nullptr;
  int hostCount = 0;
  for (const auto& f : m.headers) {
    if (f.name == "host") {
      host = &f.value;
      ++hostCount;
    }
  }
  if (hostCount > 1) {
    parser_.fail(Reason::kBadRequest, "multiple Host headers");
    return false;
  }
  bool authorityIsHost = false;  // else the target's (absolute-form, CONNECT)
  if (head.method == "CONNECT") {
    head.authority = m.url;  // authority-form
    head.path = m.url;
  } else if (m.url == "*" && head.method != "OPTIONS") {
    parser_.fail(Reason::kBadRequest, "asterisk-form target on a method other than OPTIONS");
    return false;
  } else if (m.url[0] == '/' || m.url == "*") {
    head.path = std::move(m.url);
    if (host) head.authority = *host;
    authorityIsHost = true;
  } else {
    // absolute-form (RFC 9112 §3.2.2): the URI's authority wins over Host.
    // Only http and https URIs name something a proxy can forward to.
    size_t scheme = m.url.find("://");
    std::string_view name = std::string_view(m.url).substr(0, scheme);
    if (scheme == std::string::npos ||
        !(equalsIgnoreCase(name, "http") || equalsIgnoreCase(name, "https"))) {
      parser_.fail(Reason::kBadRequest, "invalid request target");
      return false;
    }
    // The authority ends at the path, the query or the fragment (RFC 3986 §3.2).
    size_t pathStart = m.url.find_first_of("/?#", scheme + 3);
    head.authority = m.url.substr(
        scheme + 3, pathStart == std::string::npos ? std::string::npos : pathStart - scheme - 3);
    if (pathStart == std::string::npos) {
      head.path = "/";
    } else if (m.url[pathStart] == '/') {
      head.path = m.url.substr(pathStart);
    } else {
      head.path = "/" + m.url.substr(pathStart);  // "http://h?q" asks for "/?q"
    }
  }
  // RFC 9112 §3.2: every HTTP/1.1 request has a Host, absolute-form and CONNECT too.
  if ((head.authority.empty() || !host) && m.versionMinor >= 1) {
    parser_.fail(Reason::kBadRequest, "missing Host header");
    return false;
  }
  // A Host with an invalid value is refused even when the target's authority wins over it
  // (RFC 9110 §7.2), so no next hop that reads Host instead can be steered by it. In
  // origin-form the authority is the Host: checked once.
  if ((host && !host->empty() && !validAuthority(*host, false)) ||
      (!authorityIsHost && !head.authority.empty() &&
       !validAuthority(head.authority, head.method == "CONNECT"))) {
    parser_.fail(Reason::kBadRequest, "invalid Host or request-target authority");
    return false;
  }
  toLowerInPlace(head.authority);
  if (m.upgrade) {
    head.upgrade = true;
    if (const HeaderString* u = m.headers.get("upgrade")) head.upgradeProtocol = *u;
  }
  head.headers = std::move(m.headers);
  head.headers.remove("host");
  stripHopByHop(head.headers);
  return true;
}

int Http1ServerCodec::onHeadersComplete(Http1Message& m) {
  timerKind_ = TimerKind::kNone;
  requestVersionMinor_ = m.versionMinor;
  requestKeepAlive_ = m.keepAlive;
  requestIsHead_ = m.method == "HEAD";
  requestIsConnect_ = m.method == "CONNECT";
  bool expectContinue = false;
  if (const HeaderString* e = m.headers.get("expect")) {
    expectContinue = equalsIgnoreCase(*e, "100-continue");
    m.headers.remove("expect");
  }
  bool hasBody = m.chunked || m.contentLength > 0;
  requestBodyBytes_ = 0;
  if (m.contentLength > 0 && bodyTooLarge(static_cast<uint64_t>(m.contentLength))) return -1;
  bool endStream = !hasBody && !m.upgrade;
  RequestHead head;
  if (!buildRequestHead(m, head)) return -1;
  requestComplete_ = endStream;
  stream_ = std::make_unique<ActiveStream>(
      worker_, worker_.snapshot(), *this,
      StreamInfo::forConnection(listener_, peer_, conn_.tlsPeerIdentity(), originalEndpoint_));
  if (worker_.draining()) closeAfterResponse_ = true;
  stream_->decodeHeaders(std::move(head), endStream);
  if (expectContinue && hasBody && stream_ && !stream_->responseStarted() && !closed_) {
    // Tether accepts the body on the upstream's behalf (Envoy's default), so the client
    // does not wait for a 100 that the upstream, which never saw Expect, would not send.
    conn_.write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  return 0;
}

bool Http1ServerCodec::bodyTooLarge(uint64_t bytes) {
  uint64_t max = worker_.bootstrap().http.maxRequestBodyBytes;
  if (max == 0 || bytes <= max) return false;
  parser_.fail(Reason::kBodyTooLarge, "request body larger than " + std::to_string(max) + " bytes");
  return true;
}

int Http1ServerCodec::onBody(const char* data, size_t len) {
  requestBodyBytes_ += len;
  // A chunked body can only be measured as it comes: 413 if nothing was answered yet.
  if (bodyTooLarge(requestBodyBytes_)) return -1;
  if (!stream_) return 0;  // the response already ended; the body is discarded
  bodyScratch_.assign(data, len);
  stream_->decodeData(bodyScratch_, false);
  return closed_ ? -1 : 0;
}

int Http1ServerCodec::onMessageComplete(HeaderMap& trailers) {
  requestComplete_ = true;
  if (!stream_) return closed_ ? -1 : 0;
  bool upgrade = stream_->request().upgrade;
  if (!stream_->requestComplete()) {
    if (!trailers.empty()) {
      stream_->decodeTrailers(std::move(trailers));
    } else if (!upgrade) {
      bodyScratch_.clear();
      stream_->decodeData(bodyScratch_, true);
    }
  }
  if (closed_) return -1;
  // Stop after this request until its response is out (answers go back in order). An
  // upgrade stops by itself (HPE_PAUSED_UPGRADE).
  if (stream_ && !upgrade) return HPE_PAUSED;
  return 0;
}

void Http1ServerCodec::encodeHeaders(ResponseHead& head, bool endStream) {
  bool keepAlive = requestKeepAlive_ && !closeAfterResponse_ && !worker_.draining();
  bool bodyless = endStream || requestIsHead_ || head.status == 204 || head.status == 304 ||
                  (head.status >= 100 && head.status < 200);
  bool tunnelReply = head.status == 101 || (requestIsConnect_ && head.status / 100 == 2);
  out_.clear();
  out_ += "HTTP/1.1 ";
  out_ += std::to_string(head.status);
  out_ += ' ';
  out_ += statusText(head.status);
  out_ += "\r\n";
  appendHeaderFields(out_, head.headers);
  responseChunked_ = false;
  if (tunnelReply) {
    if (head.status == 101) out_ += "connection: upgrade\r\n";
  } else {
    bool hasLength = head.headers.get("content-length") != nullptr;
    if (!hasLength && !bodyless) {
      if (requestVersionMinor_ >= 1) {
        out_ += "transfer-encoding: chunked\r\n";
        responseChunked_ = true;
      } else {
        keepAlive = false;  // HTTP/1.0: the body ends when the connection does
      }
    } else if (!hasLength && endStream && head.status != 204 && head.status != 304 &&
               head.status >= 200) {
      out_ += "content-length: 0\r\n";
    }
    if (!keepAlive) {
      out_ += "connection: close\r\n";
      closeAfterResponse_ = true;
    } else if (requestVersionMinor_ == 0) {
      out_ += "connection: keep-alive\r\n";
    }
  }
  out_ += "\r\n";
  conn_.write(out_);
}

void Http1ServerCodec::encodeData(std::string_view data, bool endStream) {
  writeBody(conn_, data, endStream, responseChunked_);
}

void Http1ServerCodec::encodeTrailers(const HeaderMap& trailers) {
  if (!responseChunked_) return;  // no way to carry trailers without chunked framing
  writeTrailers(conn_, trailers, out_);
}

void Http1ServerCodec::readDisable(bool disable) { conn_.readDisable(disable); }

void Http1ServerCodec::resetFromStream() {
  // The response started and cannot be finished: closing is the only honest signal.
  closeNow();
}

void Http1ServerCodec::enterTunnel() {
  tunnel_ = true;
  responseChunked_ = false;
  if (upgradePending_) {
    upgradePending_ = false;
    if (pipelineReadPaused_) {
      pipelineReadPaused_ = false;
      conn_.readDisable(false);
    }
  }
  if (!pending_.empty() && stream_) {
    std::string early;
    early.swap(pending_);
    stream_->decodeData(early, false);
  }
}

void Http1ServerCodec::onStreamComplete() {
  std::unique_ptr<ActiveStream> done = std::move(stream_);
  worker_.deferDelete(std::move(done));
  if (tunnel_ || closeAfterResponse_ || !requestComplete_ || upgradePending_) {
    // After a tunnel, an early response (body still coming) or a close-delimited
    // response, the connection cannot carry another request.
    conn_.closeAfterFlush();
    return;
  }
  armIdleTimer();
  parserPaused_ = false;
  if (pipelineReadPaused_) {
    pipelineReadPaused_ = false;
    conn_.readDisable(false);
  }
  if (!inParse_) {
    resumeParsing();
    closeIfPeerDone();
  }
}

void Http1ServerCodec::closeIfPeerDone() {
  // Every whole request the client sent before its FIN is answered; what is left (nothing,
  // or a fragment nobody will finish) closes once the last response is out.
  if (peerDone_ && !stream_ && !closed_ && !inParse_) conn_.closeAfterFlush();
}

void Http1ServerCodec::replyError(Reason reason, const std::string& why) {
  if (errorSent_ || closed_) return;
  errorSent_ = true;
  TETHER_LOG(kDebug, "listener " + listener_.name + ": " + peer_ + ": " + why);
  if (stream_) {
    if (stream_->responseStarted()) {
      closeNow();
      return;
    }
    // The body turned out malformed: the stream's own reply path closes the connection.
    closeAfterResponse_ = true;
    requestKeepAlive_ = false;
    stream_->sendLocalReply(defaultStatus(reason), why + "\n", reason, nullptr);
    // A completed reply closes after it is flushed (onStreamComplete); anything else ends.
    if (stream_) closeNow();
    return;
  }
  int status = defaultStatus(reason);
  worker_.stats().recordLocal(listener_.direction, status, reason);
  std::string body = why + "\n";
  out_ = "HTTP/1.1 " + std::to_string(status) + " " + std::string(statusText(status)) +
         "\r\ncontent-type: text/plain\r\ncontent-length: " + std::to_string(body.size()) +
         "\r\nx-tether-reason: " + std::string(reasonName(reason)) +
         "\r\nconnection: close\r\n\r\n" + body;
  conn_.write(out_);
  conn_.readDisable(true);
  conn_.closeAfterFlush();
}

void Http1ServerCodec::onDrain() {
  closeAfterResponse_ = true;
  if (stream_ || !parser_.idle() || closed_) return;  // the response says connection: close
  // Idle between requests: the last response promised keep-alive, so the client may be
  // sending its next request right now. Closing would lose it; instead that request is
  // answered (with connection: close), and a connection that stays quiet for
  // kDrainIdleClose is closed by the sweep, as any idle connection is.
  uint64_t closeAt = uv_now(worker_.loop()) + static_cast<uint64_t>(kDrainIdleClose.count());
  if (timerKind_ != TimerKind::kIdle || deadline_ > closeAt) {
    timerKind_ = TimerKind::kIdle;
    deadline_ = closeAt;
  }
}

void Http1ServerCodec::abortForShutdown() {
  closeAfterResponse_ = true;
  if (stream_ && !stream_->responseStarted()) {
    stream_->sendLocalReply(503, "draining\n", Reason::kDraining, nullptr);
  }
  if (stream_) {
    closeNow();  // the response had started: it cannot be finished in time
  } else {
    conn_.closeAfterFlush();
  }
}

}  // namespace tether::proxy
