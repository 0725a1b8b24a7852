#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "proxy/worker.h"

namespace tether::proxy {

/// Creates a listening TCP socket with SO_REUSEPORT, bound to `address` (port 0 picks a free
/// port; the actual one is written back). libuv 1.44 has no UV_TCP_REUSEPORT, so the socket
/// is made here and each worker uv_tcp_open()s its own. Returns the fd or a negative errno.
int openReusePortSocket(config::Address& address, int backlog = 1024);

/// A worker's accept loop on one listening socket.
class Listener {
 public:
  Listener(Worker& worker, const ListenerSocket& socket);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void onConnection(int status);

 private:
  Worker& worker_;
  // The worker's own entry, not a copy: connections keep a reference to its config, and
  // the worker (unlike this listener, which goes when draining begins) outlives them all.
  const ListenerSocket& socket_;
  uv_tcp_t* handle_;  // freed in its close callback
};

}  // namespace tether::proxy
