#include "proxy/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/downstream_connection.h"
#include "proxy/log.h"

namespace tether::proxy {

namespace {

void onConnectionCb(uv_stream_t* server, int status) {
  static_cast<Listener*>(server->data)->onConnection(status);
}

void onHandleClosed(uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); }

}  // namespace

int openReusePortSocket(config::Address& address, int backlog) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (inet_pton(AF_INET, address.host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) ==
      1) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(address.port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, address.host.c_str(),
                       &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port);
    family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    return -EINVAL;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  // "[::]:15006" means IPv6 only (as in Envoy), so it can sit beside "0.0.0.0:15006".
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  if (address.port == 0) {
    sockaddr_storage bound{};
    socklen_t blen = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    address.port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                     : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  return fd;
}

Listener::Listener(Worker& worker, const ListenerSocket& socket)
    : worker_(worker), socket_(socket), handle_(new uv_tcp_t) {
  uv_tcp_init(worker_.loop(), handle_);
  handle_->data = this;
  int rc = uv_tcp_open(handle_, socket_.fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle_), 1024, onConnectionCb);
  if (rc != 0) {
    TETHER_LOG(kError, "listener " + socket_.config.name + ": " + uv_strerror(rc));
  }
}

Listener::~Listener() {
  // Closing the handle closes the fd this worker owns; the other workers keep theirs.
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), onHandleClosed);
}

void Listener::onConnection(int status) {
  if (status != 0) return;
  auto conn =
      std::make_unique<DownstreamConnection>(worker_, socket_.config, socket_.activeConnections);
  if (conn->accept(reinterpret_cast<uv_stream_t*>(handle_)) != 0) {
    conn.release()->closeNow();  // frees itself in its close callback
    return;
  }
  uint32_t active = socket_.activeConnections->fetch_add(1, std::memory_order_relaxed) + 1;
  conn->countAsActive();
  if (active > socket_.config.maxConnections) {
    worker_.stats().downstreamOverflow++;
    conn.release()->closeNow();
    return;
  }
  if (socket_.tls) conn->acceptTls(socket_.tls, socket_.config.tls->required);
  conn.release()->start();
}

}  // namespace tether::proxy
