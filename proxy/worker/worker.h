#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/bootstrap.h"
#include "proxy/common/deadline_queue.h"
#include "proxy/common/task_queue.h"
#include "proxy/common/timer.h"
#include "proxy/stream/snapshot.h"
#include "proxy/worker/stats.h"

namespace tether::proxy {

class TlsRegistry;

class DownstreamConnection;
class Listener;
class UpstreamPools;

/// An object whose deletion must wait until no callback of it is on the stack.
class Deletable {
 public:
  virtual ~Deletable() = default;
};

/// Work a worker runs on behalf of the control loop (a health check): owned by the worker
/// from adopt() until it calls Worker::jobDone().
class WorkerJob : public Deletable {
 public:
  /// The worker is stopping: end now (close what is open, report nothing); jobDone() may
  /// follow from a close callback.
  virtual void abort() = 0;
};

/// A listening socket prepared by the control thread for one worker (SO_REUSEPORT).
struct ListenerSocket {
  config::ListenerConfig config;
  int fd = -1;
  // Shared by all workers: relaxed fetch_add, undone on refusal, so racing workers may
  // pass maxConnections by one connection each for an instant.
  std::shared_ptr<std::atomic<uint32_t>> activeConnections;
  std::shared_ptr<class TlsContextSlot> tls;  // when the listener has tls
};

/// One event loop on its own thread. Owns its listeners, downstream connections, upstream
/// pools, counters and current snapshot pointer: nothing here is shared with other workers,
/// except through post().
class Worker {
 public:
  static constexpr size_t kReadBufferSize = 64 * 1024;
  /// Granularity of connection timeouts (request head, idle).
  static constexpr std::chrono::milliseconds kSweepInterval{100};

  /// `tls` (the process's, outliving the worker) supplies the upstream TLS contexts.
  Worker(int index, const config::Bootstrap& bootstrap, SnapshotPtr snapshot,
         std::vector<ListenerSocket> sockets, TlsRegistry& tls);
  ~Worker();

  /// Writes the access log to `fd` (shared, O_APPEND; owned by the caller). Call before
  /// start().
  void setAccessLogFd(int fd);
  /// Starts the thread. Returns once the loop is running, with "" or why the worker cannot
  /// run (its loop, or a listener, could not be set up); then the thread has ended.
  std::string start();
  /// Runs `task` on this worker's thread.
  void post(TaskQueue::Task task);
  /// Publishes a new snapshot; new streams use it, running ones keep theirs.
  void setSnapshot(SnapshotPtr snapshot);
  /// Begins draining: stop accepting, close idle keep-alive connections, `Connection:
  /// close` on every later response. Runs on the worker thread (post it).
  void drain();
  /// Drain deadline: answer every request still waiting with 503 `draining`, close the
  /// rest. Runs on the worker thread (post it); stop() follows.
  void abortStreams();
  /// Closes every handle and stops the loop; join() afterwards.
  void stop();
  /// Runs the loop on the calling thread until stop() has closed everything, then frees
  /// what was deferred and closes the loop. start() calls it on the worker's thread; tests
  /// that drive a worker by hand call it on theirs.
  void runLoop();
  void join();

  // Everything below is for code running on this worker's thread.
  uv_loop_t* loop() { return &loop_; }
  const SnapshotPtr& snapshot() const { return snapshot_; }
  const config::Bootstrap& bootstrap() const { return bootstrap_; }
  WorkerStats& stats() { return stats_; }
  UpstreamPools& pools() { return *pools_; }
  TlsRegistry& tls() { return tls_; }
  /// This worker's Redis connection (global rate limits); nullptr without redis.address.
  class RedisClient* redis();
  /// The time filters and engines read (the real clock unless a test replaced it).
  const Clock& clock() const { return *clock_; }
  /// Replaces the clock, deadlines included (tests, before any stream runs).
  void setClock(const Clock& clock);
  /// Request timeouts (route timeouts) of this worker.
  DeadlineQueue& deadlines() { return *deadlines_; }
  /// The access-log writer, or nullptr when the access log is off.
  class AccessLogWriter* accessLog() {
    return accessLog_.get();
  }
  char* readBuffer() { return readBuffer_.get(); }
  /// A string to encode into and hand on at once (its capacity is reused, so encoding does
  /// not allocate). Never keep it across a call that might use it too.
  std::string& scratch() { return scratch_; }
  /// Where TLS connections decrypt a read into (consumed within the read callback).
  std::string& tlsPlaintext() { return tlsPlaintext_; }
  size_t highWatermark() const { return bootstrap_.http.bufferHighWatermark; }
  size_t lowWatermark() const { return bootstrap_.http.bufferLowWatermark; }
  bool draining() const { return draining_; }
  /// A fast per-worker random number (xorshift), for weighted choices.
  uint64_t random();

  /// Per-worker state that filters keep across requests (load-balancer positions), by a
  /// process-unique key; nullptr when absent. States with keys below the current
  /// snapshot's stateKeyFloor() are dropped when that snapshot is installed.
  Deletable* filterState(uint64_t key);
  Deletable& setFilterState(uint64_t key, std::unique_ptr<Deletable> state);

  /// Something to run once in this loop turn's check phase, after every I/O callback.
  class TurnHook {
   public:
    virtual ~TurnHook() = default;
    virtual void onTurnEnd() = 0;
  };
  /// Runs hook->onTurnEnd() in this turn's check phase; cancel with cancelTurnHook().
  /// `afterPoll`: in the next turn's check phase instead, after one more poll that does not
  /// block, so what that poll reads (more responses) leaves in the same batch.
  void scheduleTurnHook(TurnHook* hook, bool afterPoll = false);
  void cancelTurnHook(TurnHook* hook);
  /// `onceForTurn`: flush in the check phase rather than at the end of the I/O callback.
  void scheduleFlush(class TcpConnection* conn, bool onceForTurn = false);
  /// Brackets a read callback: flushes scheduled by it are done at its end, in one batch.
  void beginIoCallback() { ++ioDepth_; }
  void endIoCallback();
  void deferDelete(std::unique_ptr<Deletable> object);
  /// Takes `job` until it calls jobDone(); jobs still running at stop() are aborted first.
  WorkerJob& adopt(std::unique_ptr<WorkerJob> job);
  /// The job ended: freed in the next check phase. Idempotent.
  void jobDone(WorkerJob* job);
  void addConnection(DownstreamConnection* conn);
  void removeConnection(DownstreamConnection* conn);
  size_t connectionCount() const { return connections_.size(); }
  /// Thread-safe: downstream connections open on this worker (for the drain).
  size_t activeConnections() const { return activeConnections_.load(std::memory_order_relaxed); }

  // libuv callback bridges.
  void onCheck();
  /// Makes the loop poll without blocking so this turn reaches its check phase.
  void wakeCheck();
  void onSweep();

 private:
  int index_;
  config::Bootstrap bootstrap_;
  SnapshotPtr snapshot_;
  std::vector<ListenerSocket> sockets_;
  TlsRegistry& tls_;
  uv_loop_t loop_;
  uv_check_t check_;
  uv_idle_t idle_;
  std::unique_ptr<TaskQueue> tasks_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<UpstreamPools> pools_;
  const Clock* clock_ = &RealClock::instance();
  std::unique_ptr<DeadlineQueue> deadlines_;
  std::unique_ptr<class RedisClient> redis_;
  std::unique_ptr<class AccessLogWriter> accessLog_;
  WorkerStats stats_;
  std::unique_ptr<char[]> readBuffer_;
  std::string scratch_;
  std::string tlsPlaintext_;
  std::unordered_map<uint64_t, std::unique_ptr<Deletable>> filterStates_;
  std::vector<TcpConnection*> flushList_;
  std::vector<TcpConnection*> turnFlushList_;
  std::vector<TurnHook*> turnHooks_;
  std::vector<TurnHook*> nextTurnHooks_;  // afterPoll, scheduled since the last check phase
  std::vector<TurnHook*> dueHooks_;       // afterPoll, run in the coming check phase
  std::vector<std::unique_ptr<Deletable>> deleteList_;
  std::unordered_map<WorkerJob*, std::unique_ptr<WorkerJob>> jobs_;
  std::unordered_set<DownstreamConnection*> connections_;
  std::vector<DownstreamConnection*> sweepScratch_;
  std::unique_ptr<Timer> sweep_;
  uint64_t sweeps_ = 0;
  std::atomic<size_t> activeConnections_{0};  // written by this worker, read by the drain
  std::thread thread_;
  uint64_t rng_;
  bool draining_ = false;
  bool idleActive_ = false;
  bool stopping_ = false;
  std::string initError_;  // the loop could not be set up
  int ioDepth_ = 0;
};

}  // namespace tether::proxy
