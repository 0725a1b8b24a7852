#include "proxy/network/connection.h"

#include <arpa/inet.h>

#include "proxy/common/log.h"
#include "proxy/network/tls.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
  TcpConnection* conn;
};

void allocCb(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  // One read buffer per worker: reads are consumed synchronously in the read callback.
  *buf = static_cast<TcpConnection*>(handle->data)->readBuffer();
}

void readCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  static_cast<TcpConnection*>(stream->data)->onUvRead(nread, buf);
}

void writeCb(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  TcpConnection* conn = w->conn;
  delete w;
  conn->onUvWrite(status);
}

void connectCb(uv_connect_t* req, int status) {
  auto* conn = static_cast<TcpConnection*>(req->data);
  delete req;
  conn->onUvConnect(status);
}

void closeCb(uv_handle_t* handle) { static_cast<TcpConnection*>(handle->data)->onUvClose(); }

}  // namespace

bool toSockaddr(const config::Address& address, sockaddr_storage& out) {
  return uv_ip4_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in*>(&out)) ==
             0 ||
         uv_ip6_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in6*>(&out)) ==
             0;
}

TcpConnection::TcpConnection(Worker& worker, Handler& handler)
    : worker_(worker), handler_(handler) {
  uv_tcp_init(worker_.loop(), &tcp_);
  tcp_.data = this;
  initialized_ = true;
}

TcpConnection::~TcpConnection() = default;

void TcpConnection::acceptTls(std::shared_ptr<TlsContextSlot> slot, bool required,
                              const char* alpn) {
  acceptTls_ = std::move(slot);
  tlsRequired_ = required;
  acceptAlpn_ = alpn;
}

void TcpConnection::connectTls(std::shared_ptr<TlsContext> ctx, const std::string& serverName) {
  tls_ = std::make_unique<TlsSession>(std::move(ctx), false, serverName);
}

std::string_view TcpConnection::alpn() const { return tls_ ? tls_->alpn() : std::string_view(); }

std::string_view TcpConnection::tlsPeerIdentity() const {
  return tls_ ? std::string_view(tls_->peerIdentity()) : std::string_view();
}

size_t TcpConnection::bufferedBytes() const {
  return out_.size() + inflightBytes_ + plainOut_.size() + (tls_ ? tls_->pendingPlaintext() : 0);
}

void TcpConnection::failTls(const std::string& why) {
  TETHER_LOG(kDebug, "tls: " + peerAddress() + ": " + why);
  readEnded_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  handler_.onReadEnd(UV_EPROTO);
}

bool TcpConnection::readTls(const char* data, size_t len) {
  std::string& plain = worker_.tlsPlaintext();
  plain.clear();
  size_t before = out_.size();
  bool ok = tls_->receive(data, len, plain, out_);
  if (ok && tls_->takeHandshakeEvent()) {
    if (!handler_.onTlsHandshake(tls_->alpn())) {
      close();
      return false;
    }
    ok = tls_->releaseHeld(out_);
  }
  if (out_.size() != before && !flushScheduled_ && connected_) {
    flushScheduled_ = true;
    worker_.scheduleFlush(this, flushOncePerTurn_);
  }
  if (!ok) {
    failTls(tls_->error());
    return false;
  }
  if (!plain.empty()) handler_.onRead(plain.data(), plain.size());
  if (tls_ && tls_->peerClosed() && !readEnded_ && !closing_) {
    readEnded_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    handler_.onReadEnd(UV_EOF);
    return false;
  }
  return true;
}

uv_buf_t TcpConnection::readBuffer() {
  return uv_buf_init(worker_.readBuffer(), static_cast<unsigned>(Worker::kReadBufferSize));
}

int TcpConnection::adopt(int fd) {
  int rc = uv_tcp_open(&tcp_, fd);
  if (rc != 0) return rc;
  connected_ = true;
  uv_tcp_nodelay(&tcp_, 1);  // a failure costs latency only (Nagle stays on)
  startReading();
  return 0;
}

int TcpConnection::connect(const sockaddr* addr) {
  auto* req = new uv_connect_t;
  req->data = this;
  int rc = uv_tcp_connect(req, &tcp_, addr, connectCb);
  if (rc != 0) delete req;
  return rc;
}

void TcpConnection::onUvConnect(int status) {
  if (closing_) return;
  if (status == 0) {
    connected_ = true;
    uv_tcp_nodelay(&tcp_, 1);
    startReading();
    // The ClientHello leaves first. A session that could not even be set up fails the
    // connect, with the reason in the log.
    if (tls_ && !tls_->startHandshake(out_)) {
      TETHER_LOG(kWarn, "tls: " + tls_->error());
      handler_.onConnected(UV_EPROTO);
      return;
    }
    if (!out_.empty()) worker_.scheduleFlush(this, flushOncePerTurn_);
  }
  handler_.onConnected(status);
}

void TcpConnection::startReading() {
  if (closing_ || readEnded_ || !connected_ || readDisabled_ > 0) return;
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), allocCb, readCb);
  if (rc != 0 && rc != UV_EALREADY) {
    // A socket that cannot be read is of no use: close it (the handler's onClosed follows,
    // as for any other close) rather than wait for bytes that never come.
    TETHER_LOG(kDebug, std::string("connection: cannot read: ") + uv_strerror(rc));
    close();
  }
}

void TcpConnection::readDisable(bool disable) {
  if (disable) {
    if (readDisabled_++ == 0 && connected_ && !closing_) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    }
  } else if (readDisabled_ > 0 && --readDisabled_ == 0) {
    startReading();
  }
}

void TcpConnection::onUvRead(ssize_t nread, const uv_buf_t* buf) {
  if (closing_) return;
  if (nread > 0) {
    // Writes made while handling these bytes (to this or any other connection) leave in
    // one batch right after, without waiting for another loop turn.
    worker_.beginIoCallback();
    if (acceptTls_) {
      auto slot = std::move(acceptTls_);
      if (buf->base[0] == 0x16) {
        tls_ = std::make_unique<TlsSession>(slot->get(), true, "");
        if (acceptAlpn_) tls_->setServerAlpn(acceptAlpn_);
      } else if (tlsRequired_) {
        failTls("plaintext on a TLS listener");
        worker_.endIoCallback();
        return;
      }
    }
    if (tls_) {
      readTls(buf->base, static_cast<size_t>(nread));
    } else {
      handler_.onRead(buf->base, static_cast<size_t>(nread));
    }
    worker_.endIoCallback();
  } else if (nread < 0) {
    readEnded_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    handler_.onReadEnd(static_cast<int>(nread));
  }
}

void TcpConnection::write(std::string_view data) {
  if (closing_ || data.empty()) return;
  if (tls_) {
    // Encrypted at flush time: the frames and bodies of a whole loop turn become a few
    // full-size records rather than one record per write.
    plainOut_.append(data);
  } else {
    out_.append(data);
  }
  if (!flushScheduled_ && connected_) {
    flushScheduled_ = true;
    worker_.scheduleFlush(this, flushOncePerTurn_);
  }
  if (!aboveHigh_ && bufferedBytes() > worker_.highWatermark()) {
    aboveHigh_ = true;
    handler_.onWriteWatermark(true);
  }
}

void TcpConnection::flush() {
  flushScheduled_ = false;
  if (closing_ || !connected_) return;
  if (!plainOut_.empty()) {
    bool ok = tls_->send(plainOut_, out_);
    plainOut_.clear();
    if (!ok) {
      TETHER_LOG(kDebug, "tls: " + tls_->error());
      close();
      return;
    }
  }
  if (inflightBytes_ == 0 && !out_.empty()) {
    // Try the fast path first; only what the kernel will not take now needs a request.
    uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && n != UV_EAGAIN) {
      close();
      return;
    }
    if (!out_.empty()) {
      auto* w = new WriteReq{{}, std::move(out_), this};
      out_.clear();
      inflightBytes_ = w->data.size();
      uv_buf_t wb = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
      int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &wb, 1, writeCb);
      if (rc != 0) {
        inflightBytes_ = 0;
        delete w;
        close();
        return;
      }
    }
  }
  checkLowWatermark();
  if (closeAfterFlush_ && out_.empty() && inflightBytes_ == 0) close();
}

void TcpConnection::onUvWrite(int status) {
  inflightBytes_ = 0;
  if (closing_) return;
  if (status != 0) {
    close();
    return;
  }
  // More may have been appended while the request was in flight.
  flush();
}

void TcpConnection::checkLowWatermark() {
  if (aboveHigh_ && bufferedBytes() < worker_.lowWatermark()) {
    aboveHigh_ = false;
    handler_.onWriteWatermark(false);
  }
}

void TcpConnection::closeAfterFlush() {
  if (closing_) return;
  closeAfterFlush_ = true;
  if (out_.empty() && plainOut_.empty() && inflightBytes_ == 0) {
    close();
  } else if (!flushScheduled_ && connected_) {
    flushScheduled_ = true;
    worker_.scheduleFlush(this, flushOncePerTurn_);
  }
}

void TcpConnection::close() {
  if (closing_) return;
  closing_ = true;
  out_.clear();
  // A connection that closes with our response still unread by the peer should not turn
  // into an RST that discards it; lingering is the kernel's job, we only shut down writes
  // when everything was flushed (closeAfterFlush).
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), closeCb);
}

void TcpConnection::onUvClose() { handler_.onClosed(); }

std::string TcpConnection::peerAddress() const {
  sockaddr_storage ss{};
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char ip[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(in, ip, sizeof(ip));
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(in6, ip, sizeof(ip));
    port = ntohs(in6->sin6_port);
  }
  return std::string(ip) + ":" + std::to_string(port);
}

}  // namespace tether::proxy
