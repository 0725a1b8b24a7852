#include "proxy/downstream/listener.h"

#include <unistd.h>

#include "proxy/downstream/downstream_connection.h"

namespace tether::proxy {

Listener::Listener(Worker& worker, const ListenerSocket& socket)
    : worker_(worker),
      socket_(socket),
      // The acceptor closes this worker's fd when the listener goes; the others keep theirs.
      acceptor_(
          worker.loop(), socket.fd, socket.config.name, [this](int fd) { onConnection(fd); },
          [this](int err) {
            worker_.stats().countPair(worker_.stats().acceptPauses, socket_.config.name,
                                      acceptPauseReason(err));
          }) {}

Listener::~Listener() = default;

void Listener::onConnection(int fd) {
  auto conn =
      std::make_unique<DownstreamConnection>(worker_, socket_.config, socket_.activeConnections);
  if (conn->adopt(fd) != 0) {
    ::close(fd);
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
