#pragma once
// A StreamCallbacks for driving one filter by hand in unit tests: what the filter asks of
// its stream is recorded, and the worker it sees is a real one that is never started (the
// test turns its loop when a filter waits on a timer).

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/network/tls.h"
#include "proxy/stream/filter.h"
#include "proxy/stream/snapshot.h"
#include "proxy/worker/worker.h"

namespace tether::test {

class FakeStreamCallbacks : public proxy::StreamCallbacks {
 public:
  /// `config` becomes the snapshot the stream pinned; its bootstrap is the worker's. With
  /// `clock`, the worker (its deadlines too) reads time from it.
  explicit FakeStreamCallbacks(std::shared_ptr<const config::Config> config,
                               const proxy::Clock* clock = nullptr)
      : snapshot_(std::make_shared<proxy::Snapshot>(config, 1)),
        worker_(std::make_unique<proxy::Worker>(0, config->bootstrap, snapshot_,
                                                std::vector<proxy::ListenerSocket>{}, tls)) {
    if (clock) worker_->setClock(*clock);
    info_.start = worker_->clock().steadyNow();
  }
  ~FakeStreamCallbacks() override {
    worker_->stop();
    worker_->runLoop();  // closes what the filter left on the loop
  }

  /// What the server would own: the worker's TLS registry.
  proxy::TlsRegistry tls;

  /// Hands `filter` these callbacks, as ActiveStream does.
  void attach(proxy::Filter& filter) { filter.setCallbacks(*this); }
  /// Runs the worker's loop once (timers a filter armed).
  void turn() { uv_run(worker_->loop(), UV_RUN_NOWAIT); }
  /// Fires the deadlines due by the worker's clock (after moving a ManualClock).
  void fireDeadlines() { worker_->deadlines().fireExpired(); }

  // What the filter did.
  int requestContinues = 0;
  int responseContinues = 0;
  struct LocalReply {
    int status = 0;
    std::string body;
    proxy::Reason reason = proxy::Reason::kNone;
    proxy::HeaderMap headers;
  };
  std::vector<LocalReply> localReplies;
  std::vector<int> encodedStatuses;
  std::string encodedBody;
  bool readPaused = false;
  bool reset = false;

  proxy::RequestHead requestHead;  // what request() answers
  std::vector<proxy::UpstreamHook*> hooks;

  // StreamCallbacks
  void continueRequest() override { ++requestContinues; }
  void continueResponse() override { ++responseContinues; }
  void sendLocalReply(int status, std::string_view body, proxy::Reason reason,
                      const proxy::HeaderMap* extra) override {
    LocalReply r{status, std::string(body), reason, {}};
    if (extra) r.headers = *extra;
    info_.status = status;
    info_.reason = reason;
    localReplies.push_back(std::move(r));
  }
  const proxy::Snapshot& snapshot() const override { return *snapshot_; }
  proxy::Worker& worker() override { return *worker_; }
  proxy::StreamInfo& info() override { return info_; }
  const proxy::RequestHead& request() const override { return requestHead; }
  const proxy::Route* route() const override { return route_; }
  void setRoute(const proxy::Route* route) override { route_ = route; }
  void addUpstreamHook(proxy::UpstreamHook& hook) override { hooks.push_back(&hook); }
  void runUpstreamHooks(proxy::RequestHead& head, std::string_view authority) override {
    for (auto* h : hooks) h->onUpstreamAttempt(head, authority);
  }
  void encodeHeaders(proxy::ResponseHead& head, bool) override {
    encodedStatuses.push_back(head.status);
  }
  void encodeData(std::string& data, bool) override { encodedBody += data; }
  void encodeTrailers(proxy::HeaderMap&) override {}
  void setRequestReadPaused(bool paused) override { readPaused = paused; }
  void resetStream() override { reset = true; }
  void switchToTunnel() override {}

 private:
  proxy::SnapshotPtr snapshot_;
  std::unique_ptr<proxy::Worker> worker_;
  proxy::StreamInfo info_;
  const proxy::Route* route_ = nullptr;
};

}  // namespace tether::test
