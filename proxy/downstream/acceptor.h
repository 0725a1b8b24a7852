#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "config/address.h"

namespace tether::proxy {

/// Creates a non-blocking listening TCP socket bound to `address` (port 0 picks a free port;
/// the actual one is written back). With `reusePort`, SO_REUSEPORT lets each worker listen
/// on its own socket for the same address. Returns the fd or a negative errno.
int openListeningSocket(config::Address& address, int backlog, bool reusePort);

/// The accept loop of one listening socket, in place of libuv's (which retries accept()
/// without end while descriptors are exhausted, starving every other handle of its loop).
///
/// Accepts at most kBatch connections per readiness so existing connections get their
/// turn. When accept() fails for lack of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM), it
/// stops polling the socket for kBackoff, as nginx and HAProxy do: pending connections wait
/// in the kernel's backlog, the loop keeps serving the connections it has (and closing them
/// frees descriptors), and accepting resumes by itself. With `reserve`, one descriptor is
/// held back and given up to accept a connection when exhausted (for the admin listener, so
/// probes get an answer while the proxy is full). Owns `fd` and closes it.
class Acceptor {
 public:
  static constexpr int kBatch = 64;
  static constexpr std::chrono::milliseconds kBackoff{100};
  static constexpr std::chrono::seconds kLogInterval{5};

  /// `onAccept` takes ownership of a connected, non-blocking socket. `onPause` is told the
  /// errno of each back-off (to count it).
  Acceptor(uv_loop_t* loop, int fd, std::string name, std::function<void(int fd)> onAccept,
           std::function<void(int err)> onPause, bool reserve = false);
  ~Acceptor();
  /// Why the acceptor cannot accept ("" when it can): the listener fails start-up with it.
  const std::string& error() const { return error_; }
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

 private:
  struct Handles;
  void onReadable();
  void pause(int err);
  /// Watches the socket again; returns the libuv error (then a back-off retries).
  int resume();
  bool takeReserve();
  void refillReserve();

  uv_loop_t* loop_;
  Handles* handles_;  // freed when both libuv handles have closed
  std::string name_;
  std::function<void(int)> onAccept_;
  std::function<void(int)> onPause_;
  bool wantReserve_;
  int reserveFd_ = -1;
  uint64_t pausesSinceLog_ = 0;
  uint64_t lastLogMs_ = 0;
  bool logged_ = false;
  std::string error_;
};

/// A short name for an accept errno, the `reason` label of tether_accept_paused_total.
const char* acceptPauseReason(int err);

}  // namespace tether::proxy
