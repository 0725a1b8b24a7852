#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/admin.h"
#include "proxy/dns_discovery.h"
#include "proxy/endpoint_health.h"
#include "proxy/health_checker.h"
#include "proxy/metrics_export.h"
#include "proxy/snapshot.h"
#include "proxy/task_queue.h"
#include "proxy/timer.h"
#include "proxy/worker.h"

namespace tether::proxy {

/// Re-reads the configuration sources (for SIGHUP and POST /reload).
using ConfigLoader = std::function<config::LoadResult()>;

/// The control loop of `tether run`: starts the workers, serves the admin API, handles
/// signals, readiness, reloads and the drain on shutdown. Lives on the main thread.
class Server {
 public:
  Server(std::shared_ptr<const config::Config> config, SnapshotBuilder builder,
         ConfigLoader loader);
  ~Server();

  /// Runs until shutdown; returns the process exit code.
  int run();

 private:
  int start();
  void handleAdmin(const AdminRequest& req, AdminRespond respond);
  void collectStats(std::function<void(WorkerStats)> done);
  void collectClusters(AdminRespond respond);
  void reload(const std::string& trigger);
  /// Builds a snapshot of `config` under the next version and hands it to every worker.
  void publish(std::shared_ptr<const config::Config> config);
  void checkReadiness();
  void beginShutdown(bool exitAfter);
  void drainWorkers();
  void pollDrain();
  void finish();
  bool ready() const;
  std::string readyReason() const;
  std::string configDump() const;
  std::string rulesJson() const;

  std::shared_ptr<const config::Config> config_;      // what is served: rules + discovery
  std::shared_ptr<const config::Config> baseConfig_;  // the rules as loaded
  SnapshotBuilder builder_;
  ConfigLoader loader_;
  SnapshotPtr snapshot_;
  HealthRegistry health_;
  std::unique_ptr<HealthChecker> healthChecker_;
  DiscoveredEndpoints discovered_;  // EDS-like: DNS now, the control plane later
  std::unique_ptr<DnsDiscovery> dns_;
  uv_loop_t loop_;
  std::unique_ptr<TaskQueue> tasks_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<uv_signal_t*> signals_;
  /// Reads the files `config` needs: builds its TLS contexts (services; listeners when
  /// `listeners`) and loads its HMAC secrets, so workers find them ready. Errors name the
  /// service, listener or rule.
  config::ConfigErrors prepareFiles(const config::Config& config, bool listeners);
  std::unique_ptr<Timer> readinessTimer_;
  std::unique_ptr<Timer> tlsReloadTimer_;  // re-reads certificate files that changed
  std::unique_ptr<Timer> drainTimer_;
  ControlStats control_;
  config::ConfigErrors lastRejection_;
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
};

}  // namespace tether::proxy
