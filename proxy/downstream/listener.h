#pragma once

#include <memory>

#include "proxy/downstream/acceptor.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// A worker's listening socket (its own, with SO_REUSEPORT): accepted connections become
/// DownstreamConnections.
class Listener {
 public:
  Listener(Worker& worker, const ListenerSocket& socket);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void onConnection(int fd);
  /// Why this listener cannot accept ("" when it can).
  const std::string& error() const { return acceptor_.error(); }

 private:
  Worker& worker_;
  // The worker's own entry, not a copy: connections keep a reference to its config, and
  // the worker (unlike this listener, which goes when draining begins) outlives them all.
  const ListenerSocket& socket_;
  Acceptor acceptor_;
};

}  // namespace tether::proxy
