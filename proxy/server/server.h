#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/common/signals.h"
#include "proxy/common/task_queue.h"
#include "proxy/common/timer.h"
#include "proxy/network/tls.h"
#include "proxy/server/admin.h"
#include "proxy/server/filter_runtime.h"
#include "proxy/server/metrics_export.h"
#include "proxy/stream/snapshot.h"
#include "proxy/upstream/dns_discovery.h"
#include "proxy/upstream/endpoint_health.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// Re-reads the configuration sources (for SIGHUP and POST /reload).
/// Called on the control loop at the start of a reload: returns the load itself, which runs
/// on libuv's thread pool and so may only use what it captured (copies, not references to
/// state the control loop keeps changing).
using ConfigLoader = std::function<std::function<config::LoadResult()>()>;

class JsonWriter;
class Server;

/// How a reload went.
struct ReloadOutcome {
  enum class Result { kApplied, kUnchanged, kRejected } result = Result::kRejected;
  config::ConfigErrors errors;  // when rejected
  uint64_t version = 0;         // the version served afterwards
};

/// A configuration source that lives on the control loop beside the server: the file
/// watcher, the control-plane client (control/). Every call comes on the control loop.
class ControlPlugin {
 public:
  virtual ~ControlPlugin() = default;
  /// The server is up (listeners bound, workers started).
  virtual void start(Server& server) = 0;
  /// A reload was applied (new rule globs to watch, say).
  virtual void onApplied(const config::Config& config) {}
  /// /ready changed (the local app became ready, or the drain began).
  virtual void onReadyChanged(bool ready) {}
  /// SIGTERM or POST /drain: first thing, before /ready turns 503.
  virtual void onShutdown() {}
  /// Extra fields for GET /rules (one or more key/value pairs of the open object).
  virtual void describe(JsonWriter& j) const {}
  /// The loop is winding down: close every handle.
  virtual void stop() {}
};

/// Reads the files `config` names: builds its TLS contexts (services; listeners when
/// `listeners`) in `tls` and has the filters load theirs (HMAC secrets), so workers find
/// them ready. Errors point at the field that names the file. `tether run` (at start and on
/// every reload) and `tether validate` read the same files through this.
config::ConfigErrors prepareConfigFiles(const config::Config& config, bool listeners,
                                        TlsRegistry& tls, FilterRuntime& filters);

/// The bootstrap sections that differ between `running` and `next` and that a reload cannot
/// apply (listeners, admin, workers, runAs, node, accessLog, redis, rules.controlPlane);
/// the others (http, http2, upstream, localApp, drain, rules) apply live.
std::vector<std::string> restartRequired(const config::Bootstrap& running,
                                         const config::Bootstrap& next);

/// The control loop of `tether run`: starts the workers, serves the admin API, handles
/// signals, readiness, reloads and the drain on shutdown. Lives on the main thread.
class Server {
 public:
  Server(std::shared_ptr<const config::Config> config, std::unique_ptr<FilterRuntime> filters,
         ConfigLoader loader);
  ~Server();

  /// Adds a configuration source; before run().
  void addPlugin(std::unique_ptr<ControlPlugin> plugin) { plugins_.push_back(std::move(plugin)); }
  /// Runs until shutdown; returns the process exit code.
  int run();

  // For plugins (control loop only).
  uv_loop_t* loop() { return &loop_; }
  using ReloadDone = std::function<void(const ReloadOutcome&)>;
  /// Re-reads every source off the control loop (libuv's thread pool: a large configuration
  /// must not hold up /ready, /live or /metrics), then applies the result on the loop when
  /// it is valid and different, and calls `done`. One load runs at a time; requests made
  /// meanwhile share the next one, which reads the sources as they are when it starts.
  void reload(const std::string& trigger, ReloadDone done = nullptr);
  /// Replaces the endpoints learned from the control plane (EDS-like): each service named
  /// serves exactly these; services no longer named go back to their rule documents.
  void setControlEndpoints(std::map<std::string, std::vector<config::EndpointConfig>> endpoints);
  const config::Config& config() const { return *config_; }
  /// A listener's bound address (its port resolved when the config said 0).
  config::Address listenerAddress(const std::string& name) const;
  bool isReady() const { return ready(); }
  ControlStats& controlStats() { return control_; }

 private:
  int start();
  struct ReloadJob;
  void startReload();
  ReloadOutcome applyLoaded(const std::string& trigger, config::LoadResult r);
  /// Gives freed heap back to the system a moment after a snapshot was replaced (a large
  /// configuration leaves hundreds of MB in malloc's free lists otherwise).
  void scheduleTrim();
  void handleAdmin(const AdminRequest& req, AdminRespond respond);
  void collectStats(std::function<void(WorkerStats)> done);
  void collectClusters(AdminRespond respond);
  /// Builds a snapshot of `config` under the next version and hands it to every worker.
  void publish(std::shared_ptr<const config::Config> config);
  void checkReadiness();
  /// Logs why start() cannot go on, stops what it had started; returns start()'s 1.
  int failStart(const std::string& why);
  /// Runs a health or readiness probe on a worker; `done` is called on the control loop.
  void probe(ProbeSpec spec, std::function<void(ProbeResult)> done);
  /// Starts or stops the local app's readiness probe as localApp.readiness.path says.
  void updateReadinessCheck();
  /// Tells the plugins when ready() changed.
  void notifyReady();
  void beginShutdown(bool exitAfter);
  void drainWorkers();
  void pollDrain();
  void finish();
  bool ready() const;
  std::string readyReason() const;
  std::string configDump() const;
  std::string rulesJson() const;

  // State that outlives the workers and every snapshot, so declared first: the filters'
  // (breakers, limiters, secrets, nonces), TLS contexts, endpoint health.
  std::unique_ptr<FilterRuntime> filters_;
  TlsRegistry tls_;
  HealthRegistry health_;
  std::shared_ptr<const config::Config> config_;      // what is served: rules + discovery
  std::shared_ptr<const config::Config> baseConfig_;  // the rules as loaded
  config::Bootstrap startBootstrap_;                  // what the process started with
  ConfigLoader loader_;
  SnapshotPtr snapshot_;
  std::unique_ptr<HealthChecker> healthChecker_;
  DiscoveredEndpoints discovered_;  // EDS-like: DNS now, the control plane later
  std::unique_ptr<DnsDiscovery> dns_;
  uv_loop_t loop_;
  std::unique_ptr<TaskQueue> tasks_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<Worker>> workers_;
  SignalWatch signals_;
  std::unique_ptr<Timer> readinessTimer_;
  std::unique_ptr<Timer> tlsReloadTimer_;  // re-reads certificate files that changed
  std::unique_ptr<Timer> drainTimer_;
  ControlStats control_;
  bool reloadRunning_ = false;
  bool reloadWanted_ = false;
  std::string reloadTrigger_;
  std::vector<ReloadDone> reloadWaiting_;  // for the next load
  std::unique_ptr<Timer> trimTimer_;
  config::ConfigErrors lastRejection_;
  bool started_ = false;                      // start() has run (plugins started)
  std::vector<std::string> restartRequired_;  // since start, as of the last applied reload
  std::string lastRejectionTrigger_;
  uint64_t version_ = 1;
  bool localAppReady_ = false;
  bool draining_ = false;
  bool exiting_ = false;
  bool finished_ = false;
  int signalsSeen_ = 0;
  MonoClock::time_point drainDeadline_;
  MonoClock::time_point drainStarted_;
  bool workersDraining_ = false;
  bool aborting_ = false;
  int accessLogFd_ = -1;
  std::vector<std::unique_ptr<ControlPlugin>> plugins_;
  std::map<std::string, config::Address> boundListeners_;
  std::set<std::string> controlServices_;  // services whose endpoints the control plane set
  bool lastReady_ = false;                 // what plugins were last told
};

}  // namespace tether::proxy
