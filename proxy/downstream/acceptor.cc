#include "proxy/downstream/acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/common/log.h"

namespace tether::proxy {

struct Acceptor::Handles {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  int open = 2;
  Acceptor* owner;
};

namespace {

bool outOfResources(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/// Errors that belong to one pending connection, not to the listener (accept(2): "treat
/// them like EAGAIN by retrying").
bool connectionError(int err) {
  switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

}  // namespace

int openListeningSocket(config::Address& address, int backlog, bool reusePort) {
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
      (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
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

const char* acceptPauseReason(int err) {
  switch (err) {
    case EMFILE:
      return "process_fd_limit";
    case ENFILE:
      return "system_fd_limit";
    case ENOBUFS:
    case ENOMEM:
      return "memory";
    default:
      return "error";
  }
}

Acceptor::Acceptor(uv_loop_t* loop, int fd, std::string name, std::function<void(int fd)> onAccept,
                   std::function<void(int err)> onPause, bool reserve)
    : loop_(loop),
      handles_(new Handles),
      name_(std::move(name)),
      onAccept_(std::move(onAccept)),
      onPause_(std::move(onPause)),
      wantReserve_(reserve) {
  handles_->fd = fd;
  handles_->owner = this;
  int rc = uv_poll_init_socket(loop_, &handles_->poll, fd);
  if (rc != 0) {
    // Nothing to poll with; the socket is closed here as the destructor would.
    error_ = std::string("cannot poll the listening socket: ") + uv_strerror(rc);
    ::close(fd);
    delete handles_;
    handles_ = nullptr;
    return;
  }
  handles_->poll.data = handles_;
  uv_timer_init(loop_, &handles_->timer);  // cannot fail: no system call
  handles_->timer.data = handles_;
  refillReserve();
  rc = resume();
  if (rc != 0) error_ = std::string("cannot watch the listening socket: ") + uv_strerror(rc);
}

Acceptor::~Acceptor() {
  if (!handles_) return;  // construction failed
  // Owner-less from here: the handles close, then the listening socket.
  handles_->owner = nullptr;
  auto closed = [](uv_handle_t* h) {
    auto* hs = static_cast<Handles*>(h->data);
    if (--hs->open == 0) {
      ::close(hs->fd);
      delete hs;
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), closed);
  if (reserveFd_ >= 0) ::close(reserveFd_);
}

int Acceptor::resume() {
  if (wantReserve_) refillReserve();
  int rc = uv_poll_start(&handles_->poll, UV_READABLE, [](uv_poll_t* p, int status, int) {
    auto* hs = static_cast<Handles*>(p->data);
    if (!hs->owner) return;
    if (status == 0) {
      hs->owner->onReadable();
    } else {
      // The socket itself failed (EBADF, a closed descriptor): back off and try again,
      // logged like any other pause, rather than go deaf without a word.
      hs->owner->pause(-status);
    }
  });
  if (rc != 0) pause(-rc);  // retried after the back-off
  return rc;
}

void Acceptor::onReadable() {
  refillReserve();
  for (int i = 0; i < kBatch; ++i) {
    int fd = ::accept4(handles_->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && outOfResources(errno) && takeReserve()) {
      fd = ::accept4(handles_->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    if (fd >= 0) {
      onAccept_(fd);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (connectionError(err)) continue;
    pause(err);
    return;
  }
  // A full batch: the rest wait for the next turn of the loop, after the reads.
}

void Acceptor::pause(int err) {
  uv_poll_stop(&handles_->poll);
  uv_timer_start(
      &handles_->timer,
      [](uv_timer_t* t) {
        auto* hs = static_cast<Handles*>(t->data);
        if (hs->owner) hs->owner->resume();
      },
      static_cast<uint64_t>(kBackoff.count()), 0);
  if (onPause_) onPause_(err);
  ++pausesSinceLog_;
  uint64_t now = uv_now(loop_);
  if (!logged_ || now - lastLogMs_ >= static_cast<uint64_t>(kLogInterval.count()) * 1000) {
    TETHER_LOG(kWarn, "listener " + name_ + ": cannot accept (" + std::strerror(err) +
                          "): not accepting for " + std::to_string(kBackoff.count()) +
                          " ms at a time (" + std::to_string(pausesSinceLog_) +
                          (logged_ ? " pauses since the last message)" : " pause)"));
    logged_ = true;
    lastLogMs_ = now;
    pausesSinceLog_ = 0;
  }
}

bool Acceptor::takeReserve() {
  if (reserveFd_ < 0) return false;
  ::close(reserveFd_);
  reserveFd_ = -1;
  return true;
}

void Acceptor::refillReserve() {
  if (!wantReserve_ || reserveFd_ >= 0) return;
  reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace tether::proxy
