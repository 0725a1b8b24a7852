#pragma once
// What the connection-level fuzz targets share: a fresh worker per input (nothing carries
// over from one input to the next), one downstream connection on a real socket, and a
// client end that writes the input in pieces and reads what Tether answers.

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/downstream/downstream_connection.h"
#include "proxy/network/tls.h"
#include "proxy/worker/worker.h"

namespace tether::fuzz {

class ConnectionHarness {
 public:
  ConnectionHarness(const config::Bootstrap& bootstrap, proxy::SnapshotPtr snapshot,
                    const config::ListenerConfig& listener)
      : worker_(0, bootstrap, std::move(snapshot), {}, tls_) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return;
    client_ = sv[1];
    auto conn = std::make_unique<proxy::DownstreamConnection>(worker_, listener, connections_);
    if (conn->adopt(sv[0]) != 0) {
      ::close(sv[0]);
      conn.release()->closeNow();  // frees itself in its close callback
      return;
    }
    conn.release()->start();
  }
  ~ConnectionHarness() {
    worker_.stop();
    worker_.runLoop();
    if (client_ >= 0) ::close(client_);
  }

  proxy::Worker& worker() { return worker_; }
  bool ok() const { return client_ >= 0; }
  /// What Tether wrote to the client so far (when kept).
  const std::string& received() const { return received_; }
  void keepReceived() { keep_ = true; }

  /// Writes `bytes` in pieces of `piece` bytes, with `pump` (called with this harness) run
  /// after each. Stops early when Tether closed the connection or stopped reading (a paused
  /// request).
  template <typename Pump>
  void write(std::string_view bytes, size_t piece, Pump&& pump) {
    for (size_t at = 0, stalled = 0; at < bytes.size() && stalled < 4;) {
      ssize_t n =
          ::send(client_, bytes.data() + at, std::min(piece, bytes.size() - at), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) break;
      stalled = n > 0 ? 0 : stalled + 1;
      if (n > 0) at += static_cast<size_t>(n);
      pump();
    }
  }
  /// The client half-closes (no more bytes from it).
  void shutdownWrite() { ::shutdown(client_, SHUT_WR); }

  /// One loop turn without waiting, then what Tether wrote is read (a fast client). Returns
  /// the bytes read.
  size_t turn() {
    uv_run(worker_.loop(), UV_RUN_NOWAIT);
    char buf[65536];
    size_t total = 0;
    ssize_t n;
    while ((n = ::recv(client_, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
      if (keep_) received_.append(buf, static_cast<size_t>(n));
      total += static_cast<size_t>(n);
    }
    return total;
  }

 private:
  proxy::TlsRegistry tls_;
  proxy::Worker worker_;
  std::shared_ptr<std::atomic<uint32_t>> connections_ = std::make_shared<std::atomic<uint32_t>>(0);
  int client_ = -1;
  bool keep_ = false;
  std::string received_;
};

}  // namespace tether::fuzz
