#include "proxy/worker/worker.h"

#include <unistd.h>

#include <algorithm>
#include <future>

#include "proxy/common/log.h"
#include "proxy/downstream/downstream_connection.h"
#include "proxy/downstream/listener.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/redis_client.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/access_log.h"

namespace tether::proxy {

namespace {

void onCheckCb(uv_check_t* handle) { static_cast<Worker*>(handle->data)->onCheck(); }
void onIdleCb(uv_idle_t*) {}

}  // namespace

Worker::Worker(int index, const config::Bootstrap& bootstrap, SnapshotPtr snapshot,
               std::vector<ListenerSocket> sockets, TlsRegistry& tls)
    : index_(index),
      bootstrap_(bootstrap),
      snapshot_(std::move(snapshot)),
      sockets_(std::move(sockets)),
      tls_(tls),
      readBuffer_(new char[kReadBufferSize]),
      rng_(0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(index) * 0xBF58476D1CE4E5B9ULL) ^
           static_cast<uint64_t>(getpid())) {
  // Only uv_loop_init and the task queue's eventfd make system calls that can fail (out of
  // descriptors); the check and idle handles only link into the loop.
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    initError_ = std::string("cannot create its event loop: ") + uv_strerror(rc);
    return;
  }
  check_.data = this;
  uv_check_init(&loop_, &check_);
  uv_check_start(&check_, onCheckCb);
  uv_idle_init(&loop_, &idle_);
  tasks_ = std::make_unique<TaskQueue>(&loop_);
  if (!tasks_->error().empty()) initError_ = tasks_->error();
  pools_ = std::make_unique<UpstreamPools>(*this);
  deadlines_ = std::make_unique<DeadlineQueue>(&loop_, *clock_);
  sweep_ = std::make_unique<Timer>(&loop_, [this] { onSweep(); });
  sweep_->start(kSweepInterval, kSweepInterval);
}

Worker::~Worker() {
  if (thread_.joinable()) thread_.join();
}

void Worker::setClock(const Clock& clock) {
  clock_ = &clock;
  if (deadlines_) deadlines_->setClock(clock);
}

uint64_t Worker::random() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_;
}

void Worker::setAccessLogFd(int fd) { accessLog_ = std::make_unique<AccessLogWriter>(&loop_, fd); }

std::string Worker::start() {
  if (!initError_.empty()) return initError_;
  std::promise<std::string> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    for (auto& s : sockets_) {
      listeners_.push_back(std::make_unique<Listener>(*this, s));
      if (const std::string& error = listeners_.back()->error(); !error.empty()) {
        std::string why = "listener " + s.config.name + ": " + error;
        stop();
        runLoop();  // closes what was opened
        started.set_value(why);
        return;
      }
    }
    redis();  // connect now, so the first global limit does not find Redis away
    started.set_value("");
    runLoop();
  });
  std::string error = ready.get();
  if (!error.empty()) thread_.join();
  return error;
}

void Worker::runLoop() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  // stop() closed every connection; what their close callbacks deferred is freed here.
  // Freeing an object closes its timers, whose close callbacks need one more turn.
  for (int round = 0; round < 8; ++round) {
    flushList_.clear();
    turnFlushList_.clear();
    turnHooks_.clear();
    std::vector<std::unique_ptr<Deletable>> batch;
    batch.swap(deleteList_);
    batch.clear();
    if (deleteList_.empty()) {
      // No connection is left to refer to a pool, and no stream to a deadline (a stream
      // still open at stop() cancels its deadline when its connection's close callback
      // ends it, after stop() returned).
      pools_.reset();
      deadlines_.reset();
    }
    if (uv_run(&loop_, UV_RUN_DEFAULT) == 0 && deleteList_.empty()) break;
  }
  int rc = uv_loop_close(&loop_);
  if (rc != 0) TETHER_LOG(kWarn, "worker " + std::to_string(index_) + ": loop not empty at exit");
}

void Worker::post(TaskQueue::Task task) { tasks_->post(std::move(task)); }

void Worker::setSnapshot(SnapshotPtr snapshot) {
  post([this, snapshot = std::move(snapshot)]() mutable {
    snapshot_ = std::move(snapshot);
    // The bootstrap sections a reload applies live (Server::reload lists the others as
    // needing a restart). Copied field by field into the worker's own copy: what holds a
    // reference into it (listener configs, limits) keeps a valid one.
    const config::Bootstrap& b = snapshot_->config().bootstrap;
    bootstrap_.http = b.http;
    bootstrap_.http2 = b.http2;
    bootstrap_.upstream = b.upstream;
    bootstrap_.localApp = b.localApp;
    bootstrap_.drainTimeout = b.drainTimeout;
    bootstrap_.drainGrace = b.drainGrace;
    // Streams pinned to older snapshots look their state up again (and recreate it if
    // needed); nothing holds a pointer to it across calls.
    uint64_t floor = snapshot_->stateKeyFloor();
    for (auto it = filterStates_.begin(); it != filterStates_.end();) {
      it = it->first < floor ? filterStates_.erase(it) : std::next(it);
    }
  });
}

Deletable* Worker::filterState(uint64_t key) {
  auto it = filterStates_.find(key);
  return it == filterStates_.end() ? nullptr : it->second.get();
}

Deletable& Worker::setFilterState(uint64_t key, std::unique_ptr<Deletable> state) {
  auto& slot = filterStates_[key];
  slot = std::move(state);
  return *slot;
}

void Worker::drain() {
  if (draining_) return;
  draining_ = true;
  listeners_.clear();  // stop accepting; the kernel hands queued connections to no one
  std::vector<DownstreamConnection*> conns(connections_.begin(), connections_.end());
  for (auto* c : conns) c->onDrain();
}

void Worker::onSweep() {
  uint64_t now = uv_now(&loop_);
  // Collect first: a timeout closes connections, which edits connections_.
  sweepScratch_.assign(connections_.begin(), connections_.end());
  for (auto* c : sweepScratch_) c->onSweep(now);
  // Every 10 s: pools left with nothing in them go.
  if (++sweeps_ % 100 == 0) pools_->prune();
}

void Worker::abortStreams() {
  std::vector<DownstreamConnection*> conns(connections_.begin(), connections_.end());
  for (auto* c : conns) c->abortForShutdown();
}

void Worker::stop() {
  stopping_ = true;
  sweep_.reset();
  deadlines_->stop();  // streams still open end quietly as their connections close
  accessLog_.reset();
  listeners_.clear();
  std::vector<DownstreamConnection*> conns(connections_.begin(), connections_.end());
  for (auto* c : conns) c->closeNow();
  // Jobs end before the pools they borrow from close.
  std::vector<WorkerJob*> jobs;
  for (auto& [job, owned] : jobs_) jobs.push_back(job);
  for (WorkerJob* job : jobs) job->abort();
  pools_->closeAll();
  redis_.reset();
  tasks_->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  // uv_run returns once the close callbacks have run; run() then frees what they deferred.
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

RedisClient* Worker::redis() {
  if (!redis_ && bootstrap_.redis.address && !stopping_) {
    redis_ = std::make_unique<RedisClient>(&loop_, *bootstrap_.redis.address);
  }
  return redis_.get();
}

void Worker::scheduleFlush(TcpConnection* conn, bool onceForTurn) {
  if (stopping_) return;
  if (onceForTurn) {
    turnFlushList_.push_back(conn);
    wakeCheck();
    return;
  }
  flushList_.push_back(conn);
  if (ioDepth_ > 0) return;  // endIoCallback() flushes
  wakeCheck();
}

void Worker::wakeCheck() {
  if (!idleActive_) {
    // An active idle handle makes the loop poll without blocking, so the check phase (and
    // the flush) runs in this turn even when the write came from a timer.
    idleActive_ = true;
    uv_idle_start(&idle_, onIdleCb);
  }
}

void Worker::scheduleTurnHook(TurnHook* hook, bool afterPoll) {
  if (stopping_) return;
  (afterPoll ? nextTurnHooks_ : turnHooks_).push_back(hook);
  wakeCheck();
}

void Worker::cancelTurnHook(TurnHook* hook) {
  for (auto* list : {&turnHooks_, &nextTurnHooks_, &dueHooks_}) {
    auto it = std::find(list->begin(), list->end(), hook);
    if (it != list->end()) list->erase(it);
  }
}

void Worker::deferDelete(std::unique_ptr<Deletable> object) {
  // Freed in the next check phase, which follows every poll; no need to force a turn.
  deleteList_.push_back(std::move(object));
}

WorkerJob& Worker::adopt(std::unique_ptr<WorkerJob> job) {
  WorkerJob* raw = job.get();
  jobs_.emplace(raw, std::move(job));
  return *raw;
}

void Worker::jobDone(WorkerJob* job) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  deferDelete(std::move(it->second));
  jobs_.erase(it);
}

void Worker::endIoCallback() {
  if (--ioDepth_ > 0) return;
  while (!flushList_.empty()) {
    std::vector<TcpConnection*> batch;
    batch.swap(flushList_);
    for (auto* c : batch) c->flush();
  }
}

void Worker::onCheck() {
  turnHooks_.insert(turnHooks_.end(), dueHooks_.begin(), dueHooks_.end());
  dueHooks_.clear();
  // Hooks write (HTTP/2 frames), flushing can schedule more flushes (a write callback's
  // continuation); loop until quiet.
  while (!turnHooks_.empty() || !flushList_.empty() || !turnFlushList_.empty()) {
    while (!turnHooks_.empty()) {
      TurnHook* hook = turnHooks_.back();
      turnHooks_.pop_back();
      hook->onTurnEnd();
    }
    flushList_.insert(flushList_.end(), turnFlushList_.begin(), turnFlushList_.end());
    turnFlushList_.clear();
    std::vector<TcpConnection*> batch;
    batch.swap(flushList_);
    for (auto* c : batch) c->flush();
  }
  if (!deleteList_.empty()) {
    std::vector<std::unique_ptr<Deletable>> batch;
    batch.swap(deleteList_);
    batch.clear();
  }
  // What asked for one more poll runs in the next check phase; the idle handle keeps that
  // poll from blocking.
  dueHooks_.swap(nextTurnHooks_);
  if (idleActive_ && dueHooks_.empty() && flushList_.empty() && turnFlushList_.empty() &&
      turnHooks_.empty()) {
    idleActive_ = false;
    uv_idle_stop(&idle_);
  }
}

void Worker::addConnection(DownstreamConnection* conn) {
  connections_.insert(conn);
  activeConnections_.store(connections_.size(), std::memory_order_relaxed);
}

void Worker::removeConnection(DownstreamConnection* conn) {
  connections_.erase(conn);
  activeConnections_.store(connections_.size(), std::memory_order_relaxed);
}

}  // namespace tether::proxy
