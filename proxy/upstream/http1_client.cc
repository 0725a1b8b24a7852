#include "proxy/upstream/http1_client.h"

#include <uv.h>

#include <charconv>

#include "proxy/codec/http1_encoding.h"
#include "proxy/common/log.h"

namespace tether::proxy {

UpstreamConnection::UpstreamConnection(Worker& worker, UpstreamPool& pool)
    : worker_(worker),
      pool_(pool),
      conn_(worker, *this),
      // Upstream heads are not the client's to bloat; a generous fixed limit suffices.
      parser_(Http1Parser::Type::kResponse, *this, Http1Limits{256 * 1024, 1000}),
      timer_(worker.loop(), [this] {
        if (!conn_.connected()) {
          fail(Reason::kUpstreamConnectFailure);
          return;
        }
        if (!idle_) return;  // lent out again; returnIdle() re-arms the timer
        // The timer is armed once and checks the idle age when it fires, rather than
        // being stopped and started for every request the connection carries.
        uint64_t timeout = static_cast<uint64_t>(worker_.bootstrap().upstream.idleTimeout.count());
        uint64_t idleFor = uv_now(worker_.loop()) - idleSince_;
        if (idleFor >= timeout) {
          close();
        } else {
          timer_.start(std::chrono::milliseconds(timeout - idleFor));
        }
      }) {
  conn_.setFlushOncePerTurn();
  worker_.stats().upstreamConnectionsActive++;
  worker_.stats().upstreamConnectionsTotal++;
}

UpstreamConnection::~UpstreamConnection() = default;

int UpstreamConnection::connect(const sockaddr* addr, config::Duration timeout) {
  timer_.start(timeout);
  return conn_.connect(addr);
}

void UpstreamConnection::attach(UpstreamClient* client, bool headRequest) {
  client_ = client;
  headRequest_ = headRequest;
  responseStarted_ = false;
  responseComplete_ = false;
  idle_ = false;
}

void UpstreamConnection::onConnected(int status) {
  timer_.stop();
  if (status != 0) {
    fail(Reason::kUpstreamConnectFailure);
    return;
  }
  if (client_) client_->onUpstreamReady();
}

void UpstreamConnection::fail(Reason reason) {
  UpstreamClient* c = client_;
  client_ = nullptr;
  bool wasReused = reused();
  close();
  if (c) c->onUpstreamFailure(reason, wasReused);
}

void UpstreamConnection::release(bool requestComplete) {
  client_ = nullptr;
  if (closed_) return;
  if (!tunnel_ && responseComplete_ && requestComplete && keepAlive_ && !worker_.draining()) {
    ++requestsServed_;
    pool_.returnIdle(this);
  } else {
    close();
  }
}

void UpstreamConnection::sendHead(const RequestHead& r, std::string_view authority,
                                  const RequestExtras& extras, bool endStream) {
  // Encoded into the worker's scratch string, so a request head costs no allocation.
  std::string& head = worker_.scratch();
  head.clear();
  head += r.method;
  head += ' ';
  head += r.path;
  head += " HTTP/1.1\r\nhost: ";
  head += r.authority.empty() ? authority : std::string_view(r.authority);
  head += "\r\n";
  appendHeaderFields(head, r.headers);
  // Written straight into the head: no header-map entry to allocate per request.
  auto appendNumber = [&head](std::string_view name, int64_t n) {
    char value[24];
    auto [end, ec] = std::to_chars(value, value + sizeof(value), n);
    head += name;
    head += ": ";
    head.append(value, end);
    head += "\r\n";
  };
  if (extras.timeoutMs > 0) appendNumber(kTimeoutHeader, extras.timeoutMs);
  if (extras.attempt > 1) appendNumber(kAttemptHeader, extras.attempt);
  chunked_ = false;
  if (r.upgrade) {
    head += "connection: upgrade\r\nupgrade: ";
    head += r.upgradeProtocol;
    head += "\r\n";
  } else if (!endStream && !r.headers.get("content-length")) {
    head += "transfer-encoding: chunked\r\n";
    chunked_ = true;
  }
  head += "\r\n";
  conn_.write(head);
}

void UpstreamConnection::sendData(std::string_view data, bool endStream) {
  writeBody(conn_, data, endStream, chunked_ && !tunnel_);
}

void UpstreamConnection::sendTrailers(const HeaderMap& trailers) {
  // Only chunked framing carries trailers; a Content-Length body already ended.
  if (chunked_) writeTrailers(conn_, trailers, worker_.scratch());
}

void UpstreamConnection::enterTunnel() { tunnel_ = true; }

void UpstreamConnection::close() {
  if (closed_) return;
  closed_ = true;
  timer_.stop();
  conn_.close();
}

void UpstreamConnection::onRead(const char* data, size_t len) {
  if (tunnel_) {
    if (client_) {
      scratch_.assign(data, len);
      client_->onUpstreamData(scratch_, false);
    }
    return;
  }
  if (!client_) {
    // Bytes on an idle connection: the upstream is confused or closing. Not reusable.
    close();
    return;
  }
  Http1Parser::Result r = parser_.execute(data, len);
  if (closed_) return;
  if (r.status == Http1Parser::Status::kError) {
    TETHER_LOG(kDebug, "upstream " + pool_.address().toString() +
                           ": bad response: " + parser_.errorMessage());
    if (responseStarted_) {
      UpstreamClient* c = client_;
      client_ = nullptr;
      close();
      if (c) c->onUpstreamReset();
    } else {
      fail(Reason::kUpstreamReset);
    }
  } else if (r.status == Http1Parser::Status::kPaused) {
    if (r.consumed < len) {
      // Bytes after a complete response, before we asked for another: never reuse this.
      if (client_) {
        fail(Reason::kUpstreamReset);
        return;
      }
      close();
      return;
    }
    // The response ended. If a router already took this connection again (from inside the
    // callbacks above), parsing resumes now; otherwise acquire() resumes it.
    if (client_) {
      parser_.resume();
    } else {
      parserPaused_ = true;
    }
  } else if (r.status == Http1Parser::Status::kUpgrade && client_ && r.consumed < len) {
    // Bytes after the 101 belong to the tunnel.
    scratch_.assign(data + r.consumed, len - r.consumed);
    client_->onUpstreamData(scratch_, false);
  }
}

void UpstreamConnection::onReadEnd(int status) {
  if (tunnel_) {
    UpstreamClient* c = client_;
    if (c) {
      scratch_.clear();
      c->onUpstreamData(scratch_, true);
    }
    close();
    return;
  }
  if (client_ && responseStarted_ && !responseComplete_) {
    // A close-delimited body ends here; anything else was cut short.
    if (parser_.finish() == Http1Parser::Status::kOk && responseComplete_) {
      close();
      return;
    }
    UpstreamClient* c = client_;
    client_ = nullptr;
    close();
    c->onUpstreamReset();
    return;
  }
  if (client_ && !responseStarted_) {
    fail(Reason::kUpstreamReset);
    return;
  }
  close();
}

void UpstreamConnection::onWriteWatermark(bool aboveHigh) {
  if (client_) client_->onUpstreamWatermark(aboveHigh);
}

void UpstreamConnection::onClosed() {
  closed_ = true;
  if (budget_) budget_->fetch_sub(1, std::memory_order_relaxed);
  worker_.stats().upstreamConnectionsActive--;
  pool_.onConnectionClosed(this);
  worker_.deferDelete(std::unique_ptr<Deletable>(this));
}

int UpstreamConnection::onHeadersComplete(Http1Message& m) {
  if (m.status >= 100 && m.status < 200 && m.status != 101) {
    return 0;  // interim responses (100 Continue, 103) are not passed on
  }
  responseStarted_ = true;
  keepAlive_ = m.keepAlive;
  ResponseHead head;
  head.status = m.status;
  head.headers = std::move(m.headers);
  std::string upgrade;
  if (m.status == 101) {
    if (const HeaderString* u = head.headers.get("upgrade")) upgrade = *u;
  }
  stripHopByHop(head.headers);
  if (!upgrade.empty()) head.headers.add("upgrade", upgrade);
  bool bodyless =
      headRequest_ || m.status == 204 || m.status == 304 || (!m.chunked && m.contentLength == 0);
  if (m.status == 101) bodyless = false;
  // A bodyless response is complete with its head: the router may hand the connection
  // back to the pool from inside the callback below.
  if (bodyless) responseComplete_ = true;
  if (client_) client_->onUpstreamHeaders(head, bodyless);
  if (closed_) return -1;
  return headRequest_ ? 1 : 0;
}

int UpstreamConnection::onBody(const char* data, size_t len) {
  if (!client_) return 0;
  scratch_.assign(data, len);
  client_->onUpstreamData(scratch_, false);
  return closed_ ? -1 : 0;
}

int UpstreamConnection::onMessageComplete(HeaderMap& trailers) {
  if (!responseStarted_) return 0;  // the end of an interim response
  if (tunnel_) return 0;            // a 101's head: the tunnel follows (HPE_PAUSED_UPGRADE)
  if (parser_.headersDone() && !responseComplete_) {
    responseComplete_ = true;
    UpstreamClient* c = client_;
    if (c) {
      if (!trailers.empty()) {
        c->onUpstreamTrailers(trailers);
      } else {
        scratch_.clear();
        c->onUpstreamData(scratch_, true);
      }
    }
  }
  if (closed_) return -1;
  // One response per request: anything after it before the next request is an error.
  return HPE_PAUSED;
}

UpstreamPool::UpstreamPool(Worker& worker, UpstreamTarget target)
    : worker_(worker),
      target_(std::move(target)),
      serveTimer_(worker.loop(), [this] { serveWaiters(); }) {}

UpstreamPool::~UpstreamPool() { closeAll(); }

UpstreamConnection* UpstreamPool::takeIdle(UpstreamClient& client, bool headRequest) {
  while (!idle_.empty()) {
    UpstreamConnection* c = idle_.back();
    idle_.pop_back();
    if (c->closed_) continue;
    c->attach(&client, headRequest);
    if (c->parserPaused_) {
      c->parserPaused_ = false;
      c->parser_.resume();
    }
    worker_.stats().upstreamConnectionsReused++;
    return c;
  }
  return nullptr;
}

UpstreamConnection* UpstreamPool::open(UpstreamClient& client, bool headRequest,
                                       config::Duration connectTimeout,
                                       const ConnectionBudget& budget) {
  auto* c = new UpstreamConnection(worker_, *this);
  // Taken by the caller; given back when the connection closes (a failed connect too).
  c->budget_ = budget.open;
  all_.insert(c);
  c->attach(&client, headRequest);
  target_.prepare(c->conn_);
  if (c->connect(target_.socketAddress(), connectTimeout) != 0) {
    c->client_ = nullptr;
    c->close();  // frees itself in its close callback
    return nullptr;
  }
  return c;
}

UpstreamConnection* UpstreamPool::acquire(UpstreamClient& client, bool headRequest,
                                          config::Duration connectTimeout,
                                          const ConnectionBudget& budget, Lent& how) {
  // Requests already in line go first.
  if (waiters_.empty()) {
    if (UpstreamConnection* c = takeIdle(client, headRequest)) {
      how = Lent::kReady;
      return c;
    }
  }
  if (!target_.socketAddress()) {
    how = Lent::kFailed;
    return nullptr;
  }
  if (!waiters_.empty() || !budget.take(all_.empty())) {
    waiters_.push_back(Waiter{&client, headRequest, connectTimeout, budget});
    how = Lent::kQueued;
    return nullptr;
  }
  UpstreamConnection* c = open(client, headRequest, connectTimeout, budget);
  how = c ? Lent::kConnecting : Lent::kFailed;
  return c;
}

void UpstreamPool::cancelWait(UpstreamClient& client) {
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->client == &client) {
      waiters_.erase(it);
      return;
    }
  }
}

void UpstreamPool::serveWaiters() {
  // Each callback may queue, cancel or acquire again: nothing is held across one.
  while (!waiters_.empty()) {
    Waiter w = waiters_.front();
    if (UpstreamConnection* c = takeIdle(*w.client, w.headRequest)) {
      waiters_.pop_front();
      w.client->onUpstreamGranted(*c, Lent::kReady);
      continue;
    }
    if (!w.budget.take(all_.empty())) return;  // a connection closing or freed calls again
    waiters_.pop_front();
    UpstreamConnection* c = open(*w.client, w.headRequest, w.connectTimeout, w.budget);
    if (c) {
      w.client->onUpstreamGranted(*c, Lent::kConnecting);
    } else {
      w.client->onUpstreamFailure(Reason::kUpstreamConnectFailure, false);
    }
  }
}

void UpstreamPool::returnIdle(UpstreamConnection* c) {
  if (!waiters_.empty()) serveTimer_.start(std::chrono::milliseconds(0));
  if (idle_.size() >= worker_.bootstrap().upstream.maxIdlePerEndpoint) {
    c->close();
    return;
  }
  c->idle_ = true;
  c->idleSince_ = uv_now(worker_.loop());
  if (!c->timer_.active()) c->timer_.start(worker_.bootstrap().upstream.idleTimeout);
  idle_.push_back(c);
}

void UpstreamPool::onConnectionClosed(UpstreamConnection* c) {
  all_.erase(c);
  if (!waiters_.empty()) serveTimer_.start(std::chrono::milliseconds(0));
  for (size_t i = 0; i < idle_.size(); ++i) {
    if (idle_[i] == c) {
      idle_.erase(idle_.begin() + static_cast<long>(i));
      break;
    }
  }
}

void UpstreamPool::closeAll() {
  std::vector<UpstreamConnection*> conns(all_.begin(), all_.end());
  for (auto* c : conns) c->close();
  idle_.clear();
  std::deque<Waiter> waiters;
  waiters.swap(waiters_);
  for (Waiter& w : waiters) w.client->onUpstreamFailure(Reason::kUpstreamConnectFailure, false);
}

}  // namespace tether::proxy
