#pragma once
// The HTTP/1.1 client codec: one connection per exchange at a time (UpstreamConnection)
// and the keep-alive pool of them to one endpoint (UpstreamPool).

#include <deque>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "proxy/codec/http1_parser.h"
#include "proxy/common/timer.h"
#include "proxy/upstream/upstream.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

class UpstreamPool;

/// One HTTP/1.1 connection to an endpoint. Owned by its pool while idle, lent to one
/// router at a time while active; frees itself (deferred) when closed.
class UpstreamConnection : public UpstreamRequest,
                           public TcpConnection::Handler,
                           public Http1Parser::Callbacks,
                           public Deletable {
 public:
  UpstreamConnection(Worker& worker, UpstreamPool& pool);
  ~UpstreamConnection() override;

  int connect(const sockaddr* addr, config::Duration timeout);
  void attach(UpstreamClient* client, bool headRequest);
  bool reused() const { return requestsServed_ > 0; }

  // UpstreamRequest
  void sendHead(const RequestHead& head, std::string_view authority, const RequestExtras& extras,
                bool endStream) override;
  void sendData(std::string_view data, bool endStream) override;
  void sendTrailers(const HeaderMap& trailers) override;
  void readDisable(bool disable) override { conn_.readDisable(disable); }
  void enterTunnel() override;
  void close() override;
  void release(bool requestComplete) override;
  size_t bufferedBytes() const override { return conn_.bufferedBytes(); }

  // TcpConnection::Handler
  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onConnected(int status) override;
  void onWriteWatermark(bool aboveHigh) override;
  void onClosed() override;

  // Http1Parser::Callbacks
  int onHeadersComplete(Http1Message& message) override;
  int onBody(const char* data, size_t len) override;
  int onMessageComplete(HeaderMap& trailers) override;

 private:
  void fail(Reason reason);

  Worker& worker_;
  UpstreamPool& pool_;
  std::shared_ptr<std::atomic<int64_t>> budget_;  // the service's open connections
  TcpConnection conn_;
  Http1Parser parser_;
  Timer timer_;
  UpstreamClient* client_ = nullptr;
  std::string scratch_;
  uint64_t requestsServed_ = 0;
  uint64_t idleSince_ = 0;  // loop time (ms) the connection last went idle
  bool headRequest_ = false;
  bool chunked_ = false;  // the request body is chunked
  bool responseStarted_ = false;
  bool responseComplete_ = false;
  bool keepAlive_ = true;
  bool tunnel_ = false;
  bool closed_ = false;
  bool idle_ = false;
  bool parserPaused_ = false;

  friend class UpstreamPool;
};

/// Keep-alive connections to one endpoint, for one worker.
class UpstreamPool {
 public:
  UpstreamPool(Worker& worker, UpstreamTarget target);
  ~UpstreamPool();

  /// Lends a connection to `client`: an idle one (kReady) or a new one (kConnecting). When
  /// `budget` is spent the request waits in line for one of this pool's connections
  /// (kQueued; onUpstreamGranted follows, or cancelWait). Returns nullptr unless kReady or
  /// kConnecting (the client's onUpstreamFailure has not been called).
  UpstreamConnection* acquire(UpstreamClient& client, bool headRequest,
                              config::Duration connectTimeout, const ConnectionBudget& budget,
                              Lent& how);
  /// Takes a queued request out of line.
  void cancelWait(UpstreamClient& client);
  /// Called by a connection that finished an exchange and may be reused.
  void returnIdle(UpstreamConnection* conn);
  /// Called by a connection when it closes.
  void onConnectionClosed(UpstreamConnection* conn);
  /// Closes every connection; queued requests fail.
  void closeAll();
  const config::Address& address() const { return target_.address(); }
  size_t idleCount() const { return idle_.size(); }
  size_t connectionCount() const { return all_.size(); }
  size_t queued() const { return waiters_.size(); }

 private:
  struct Waiter {
    UpstreamClient* client;
    bool headRequest;
    config::Duration connectTimeout;
    ConnectionBudget budget;
  };
  UpstreamConnection* takeIdle(UpstreamClient& client, bool headRequest);
  UpstreamConnection* open(UpstreamClient& client, bool headRequest,
                           config::Duration connectTimeout, const ConnectionBudget& budget);
  /// Hands freed connections (or budget) to queued requests, first come first served. Runs
  /// from a timer, never inside a connection's callbacks.
  void serveWaiters();

  Worker& worker_;
  UpstreamTarget target_;
  std::vector<UpstreamConnection*> idle_;  // most recently used last
  std::unordered_set<UpstreamConnection*> all_;
  std::deque<Waiter> waiters_;
  Timer serveTimer_;
  friend class UpstreamConnection;
};

}  // namespace tether::proxy
