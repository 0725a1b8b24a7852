#include "proxy/downstream/tcp_proxy.h"

#include <linux/netfilter_ipv4.h>
#include <sys/socket.h>

#include <cstring>

namespace tether::proxy {

TcpProxy::TcpProxy(Worker& worker, TcpConnection& downstream, TcpProxy** ownerSlot)
    : worker_(worker),
      down_(&downstream),
      ownerSlot_(ownerSlot),
      up_(worker, *this),
      connectTimer_(worker.loop(), [this] { up_.close(); }),
      lastActivity_(uv_now(worker.loop())) {
  worker_.stats().tcpConnections++;
}

bool TcpProxy::connect(const sockaddr* addr, config::Duration timeout) {
  connectTimer_.start(timeout);
  if (up_.connect(addr) != 0) {
    up_.close();
    return false;
  }
  return true;
}

void TcpProxy::onDownstreamData(const char* data, size_t len) {
  touch();
  worker_.stats().tcpBytesReceived += len;
  up_.write(std::string_view(data, len));
}

void TcpProxy::onDownstreamEnd() { up_.closeAfterFlush(); }

void TcpProxy::onDownstreamWatermark(bool aboveHigh) {
  if (aboveHigh == upPaused_) return;
  upPaused_ = aboveHigh;
  up_.readDisable(aboveHigh);
}

void TcpProxy::detach() {
  down_ = nullptr;
  ownerSlot_ = nullptr;
  up_.close();
}

void TcpProxy::onRead(const char* data, size_t len) {
  touch();
  worker_.stats().tcpBytesSent += len;
  if (down_) down_->write(std::string_view(data, len));
}

void TcpProxy::onReadEnd(int) {
  if (down_) down_->closeAfterFlush();
  up_.close();
}

void TcpProxy::onConnected(int status) {
  connectTimer_.stop();
  if (status != 0) {
    worker_.stats().tcpConnectFailures++;
    up_.close();
  }
}

void TcpProxy::onWriteWatermark(bool aboveHigh) {
  if (!down_ || aboveHigh == downPaused_) return;
  downPaused_ = aboveHigh;
  down_->readDisable(aboveHigh);
}

void TcpProxy::onClosed() {
  connectTimer_.stop();
  if (ownerSlot_) *ownerSlot_ = nullptr;
  if (down_) {
    if (downPaused_) down_->readDisable(false);
    down_->closeAfterFlush();
    down_ = nullptr;
  }
  worker_.deferDelete(std::unique_ptr<Deletable>(this));
}

bool originalDestination(uv_tcp_t* tcp, sockaddr_storage& local, sockaddr_storage& original) {
  // IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h, which clashes with the libc
  // headers) has the IPv4 option's number.
  constexpr int kIp6OriginalDst = SO_ORIGINAL_DST;
  uv_os_fd_t fd;
  local = sockaddr_storage{};
  original = sockaddr_storage{};
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) != 0) return false;
  socklen_t len = sizeof(local);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  len = sizeof(original);
  bool v6 = local.ss_family == AF_INET6;
  if (getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? kIp6OriginalDst : SO_ORIGINAL_DST, &original,
                 &len) != 0) {
    return false;
  }
  // Without a NAT entry the "original" destination is the listener itself.
  if (sockaddrPort(original) != sockaddrPort(local)) return true;
  if (v6) {
    return memcmp(&reinterpret_cast<sockaddr_in6&>(original).sin6_addr,
                  &reinterpret_cast<sockaddr_in6&>(local).sin6_addr, sizeof(in6_addr)) != 0;
  }
  return reinterpret_cast<sockaddr_in&>(original).sin_addr.s_addr !=
         reinterpret_cast<sockaddr_in&>(local).sin_addr.s_addr;
}

config::Address fromSockaddr(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&addr), ip, sizeof(ip));
  } else if (addr.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&addr), ip, sizeof(ip));
  }
  return config::Address{ip, sockaddrPort(addr)};
}

uint16_t sockaddrPort(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  }
  return 0;
}

void TcpServerCodec::start(const sockaddr* target, std::string early) {
  proxy_ = new TcpProxy(worker_, conn_, &proxy_);
  if (!proxy_->connect(target, worker_.bootstrap().upstream.connectTimeout)) {
    return;  // the proxy closes the client once its upstream handle is closed
  }
  if (!early.empty()) proxy_->onDownstreamData(early.data(), early.size());
}

void TcpServerCodec::onRead(const char* data, size_t len) {
  if (proxy_) proxy_->onDownstreamData(data, len);
}

void TcpServerCodec::onReadEnd(int) {
  if (proxy_) {
    proxy_->onDownstreamEnd();
  } else {
    conn_.close();
  }
}

void TcpServerCodec::onWriteWatermark(bool aboveHigh) {
  if (proxy_) proxy_->onDownstreamWatermark(aboveHigh);
}

void TcpServerCodec::onSweep(uint64_t now) {
  uint64_t idle = static_cast<uint64_t>(idleTimeout_.count());
  if (proxy_ && now > proxy_->lastActivity() + idle) conn_.close();
}

void TcpServerCodec::onConnectionClosed() {
  if (!proxy_) return;
  proxy_->detach();
  proxy_ = nullptr;
}

}  // namespace tether::proxy
