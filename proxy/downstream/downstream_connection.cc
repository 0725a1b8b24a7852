#include "proxy/downstream/downstream_connection.h"

#include <algorithm>

#include "proxy/common/log.h"
#include "proxy/downstream/http1_server.h"
#include "proxy/downstream/http2_server.h"
#include "proxy/downstream/tcp_proxy.h"

namespace tether::proxy {

namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum class Match { kNo, kMaybe, kYes };

/// Whether `data` starts like an HTTP/1.x request line (a known method and a space).
Match http1RequestLine(std::string_view data) {
  static constexpr std::string_view kMethods[] = {"GET ",   "POST ",    "PUT ",     "DELETE ",
                                                  "HEAD ",  "OPTIONS ", "PATCH ",   "CONNECT ",
                                                  "TRACE ", "PRI ",     "PROPFIND "};
  Match best = Match::kNo;
  for (std::string_view m : kMethods) {
    size_t n = std::min(m.size(), data.size());
    if (data.substr(0, n) != m.substr(0, n)) continue;
    if (n == m.size()) return Match::kYes;
    best = Match::kMaybe;
  }
  return best;
}

}  // namespace

DownstreamConnection::DownstreamConnection(
    Worker& worker, const config::ListenerConfig& listener,
    std::shared_ptr<std::atomic<uint32_t>> listenerConnections)
    : worker_(worker),
      listener_(listener),
      listenerConnections_(std::move(listenerConnections)),
      conn_(worker, *this) {
  worker_.addConnection(this);
  worker_.stats().downstreamConnectionsActive++;
  worker_.stats().downstreamConnectionsTotal++;
}

DownstreamConnection::~DownstreamConnection() = default;

int DownstreamConnection::adopt(int fd) { return conn_.adopt(fd); }

void DownstreamConnection::acceptTls(std::shared_ptr<TlsContextSlot> slot, bool required) {
  const char* alpn = nullptr;  // auto: h2, then http/1.1
  if (listener_.protocol == config::ListenerProtocol::kHttp1) alpn = "\x08http/1.1";
  if (listener_.protocol == config::ListenerProtocol::kHttp2) alpn = "\x02h2";
  conn_.acceptTls(std::move(slot), required, alpn);
}

bool DownstreamConnection::onTlsHandshake(std::string_view alpn) {
  // Over TLS the handshake, not the bytes, decides (sniffing is for plaintext): ALPN h2 (or
  // a protocol: http2 listener) is HTTP/2 and anything but its preface a connection error;
  // http/1.1 or no ALPN is HTTP/1.1, preface bytes included.
  if (awaitingHttp2_ || (detecting_ && alpn == "h2")) {
    awaitingHttp2_ = false;
    detecting_ = false;
    if (detectTimer_) detectTimer_->stop();
    startHttp2();
  } else if (detecting_) {
    detecting_ = false;
    if (detectTimer_) detectTimer_->stop();
    startHttp1();
  }
  return true;
}

void DownstreamConnection::start() {
  peer_ = conn_.peerAddress();
  acceptedAt_ = uv_hrtime();
  sockaddr_storage local{};
  if (listener_.originalDestination || !listener_.tcpService.empty()) {
    hasOriginalDst_ = originalDestination(conn_.handle(), local, originalDst_);
  }
  if (hasOriginalDst_ && listener_.originalDestination) {
    // Built once per connection; each stream holds a reference.
    auto e = std::make_shared<config::EndpointConfig>();
    e->address = fromSockaddr(originalDst_);
    e->addressText = e->address.toString();
    originalEndpoint_ = std::move(e);
  }
  // A client that never speaks is closed like any other.
  headersDeadline_ = uv_now(worker_.loop()) +
                     static_cast<uint64_t>(worker_.bootstrap().http.requestHeadersTimeout.count());
  if (listener_.protocol == config::ListenerProtocol::kHttp2) {
    if (listener_.tls) {
      awaitingHttp2_ = true;
      return;
    }
    startHttp2();
    return;
  }
  detecting_ = listener_.protocol == config::ListenerProtocol::kAuto;
  if (!detecting_) {
    startHttp1();
    return;
  }
  if (!conn_.tls()) {
    canTcp_ = !listener_.tcpService.empty() || originalEndpoint_;
    if (canTcp_) {
      uint16_t port = sockaddrPort(hasOriginalDst_ ? originalDst_ : local);
      const auto& skip = listener_.detect.skipPorts;
      if (std::find(skip.begin(), skip.end(), port) != skip.end()) {
        // A server-speaks-first protocol: waiting for the client would stall it.
        startTcp("", "tcp_skip_port");
        return;
      }
      detectTimer_ = std::make_unique<Timer>(worker_.loop(), [this] {
        if (detecting_) startTcp(std::move(pending_), "tcp_timeout");
      });
      detectTimer_->start(listener_.detect.timeout);
    }
  }
}

void DownstreamConnection::detected(const char* outcome) {
  worker_.stats().countPair(worker_.stats().protocols, listener_.name, outcome);
  worker_.stats().detectDuration.observe(static_cast<double>(uv_hrtime() - acceptedAt_) / 1e9);
}

void DownstreamConnection::startTcp(std::string early, const char* outcome) {
  detecting_ = false;
  detected(outcome);
  if (detectTimer_) detectTimer_->stop();
  sockaddr_storage target{};
  if (originalEndpoint_) {
    target = originalDst_;
  } else {
    const auto& services = worker_.snapshot()->config().services;
    auto it = services.find(listener_.tcpService);
    const auto* endpoints = it == services.end() ? nullptr : &it->second.endpoints;
    if (!endpoints || endpoints->empty() ||
        !toSockaddr((*endpoints)[worker_.random() % endpoints->size()].address, target)) {
      TETHER_LOG(kDebug, "listener " + listener_.name + ": no endpoint for raw TCP");
      closeNow();
      return;
    }
  }
  auto tcp = std::make_unique<TcpServerCodec>(worker_, conn_, listener_.tcpIdleTimeout);
  TcpServerCodec& codec = *tcp;
  codec_ = std::move(tcp);
  codec.start(reinterpret_cast<const sockaddr*>(&target), std::move(early));
}

void DownstreamConnection::startHttp1() {
  detected("http1");
  codec_ = std::make_unique<Http1ServerCodec>(worker_, conn_, listener_, peer_, originalEndpoint_,
                                              headersDeadline_);
}

void DownstreamConnection::startHttp2() {
  detected("http2");
  conn_.setFlushOncePerTurn();
  auto h2 = std::make_unique<Http2ServerSession>(worker_, conn_, listener_, peer_);
  Http2ServerSession& session = *h2;
  codec_ = std::move(h2);
  session.setOriginalDestination(originalEndpoint_);
  session.start();
  if (worker_.draining()) session.onDrain();
}

bool DownstreamConnection::detect(const char* data, size_t len) {
  pending_.append(data, len);
  size_t n = std::min(pending_.size(), kHttp2Preface.size());
  bool prefaceSoFar = std::string_view(pending_).substr(0, n) == kHttp2Preface.substr(0, n);
  if (prefaceSoFar && n < kHttp2Preface.size()) return false;  // wait for more bytes
  Match h1 = prefaceSoFar ? Match::kNo : http1RequestLine(pending_);
  if (canTcp_ && h1 == Match::kMaybe) return false;
  detecting_ = false;
  if (detectTimer_) detectTimer_->stop();
  std::string first;
  first.swap(pending_);
  if (prefaceSoFar) {
    startHttp2();
  } else if (canTcp_ && h1 == Match::kNo) {
    startTcp(std::move(first), "tcp");
    return true;
  } else {
    startHttp1();
  }
  codec_->onRead(first.data(), first.size());
  return true;
}

void DownstreamConnection::onSweep(uint64_t now) {
  if (codec_) {
    codec_->onSweep(now);
  } else if (now >= headersDeadline_) {
    closeNow();  // still detecting, or waiting for TLS, past the request-head timeout
  }
}

void DownstreamConnection::onRead(const char* data, size_t len) {
  if (codec_) {
    codec_->onRead(data, len);
  } else if (awaitingHttp2_) {  // plaintext on a TLS-capable http2 listener: h2c
    awaitingHttp2_ = false;
    startHttp2();
    codec_->onRead(data, len);
  } else if (detecting_) {
    detect(data, len);
  }
}

void DownstreamConnection::onReadEnd(int status) {
  if (codec_) {
    codec_->onReadEnd(status);
  } else {
    closeNow();
  }
}

void DownstreamConnection::onWriteWatermark(bool aboveHigh) {
  if (codec_) codec_->onWriteWatermark(aboveHigh);
}

void DownstreamConnection::onDrain() {
  if (codec_) {
    codec_->onDrain();
    return;
  }
  // Not a word yet: given as long as an idle HTTP/1.1 connection is while draining.
  uint64_t closeAt =
      uv_now(worker_.loop()) + static_cast<uint64_t>(Http1ServerCodec::kDrainIdleClose.count());
  headersDeadline_ = std::min(headersDeadline_, closeAt);
}

void DownstreamConnection::abortForShutdown() {
  if (codec_) {
    codec_->abortForShutdown();
  } else {
    closeNow();
  }
}

void DownstreamConnection::closeNow() {
  if (closed_) return;
  closed_ = true;
  conn_.close();
}

void DownstreamConnection::onClosed() {
  closed_ = true;
  if (codec_) codec_->onConnectionClosed();
  if (detectTimer_) detectTimer_->stop();
  if (counted_) listenerConnections_->fetch_sub(1, std::memory_order_relaxed);
  worker_.stats().downstreamConnectionsActive--;
  worker_.removeConnection(this);
  worker_.deferDelete(std::unique_ptr<Deletable>(this));
}

}  // namespace tether::proxy
