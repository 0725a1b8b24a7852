#include "proxy/server/server.h"

#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "proxy/common/json.h"
#include "proxy/common/log.h"
#include "proxy/downstream/listener.h"
#include "proxy/network/tls.h"
#include "proxy/upstream/health_probe.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/access_log.h"

namespace tether::proxy {

Server::Server(std::shared_ptr<const config::Config> config, std::unique_ptr<FilterRuntime> filters,
               ConfigLoader loader)
    : filters_(std::move(filters)),
      config_(std::move(config)),
      baseConfig_(config_),
      startBootstrap_(config_->bootstrap),
      loader_(std::move(loader)) {
  // Nothing can run without these two (they fail only when out of descriptors): exit with
  // the reason, before anything was started.
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    TETHER_LOG(kError, std::string("cannot create the control loop: ") + uv_strerror(rc));
    std::_Exit(1);
  }
  tasks_ = std::make_unique<TaskQueue>(&loop_);
  if (!tasks_->error().empty()) {
    TETHER_LOG(kError, "control loop: " + tasks_->error());
    std::_Exit(1);
  }
}

Server::~Server() {
  for (auto& w : workers_) w->join();
  if (accessLogFd_ > STDERR_FILENO) ::close(accessLogFd_);
}

int Server::start() {
  const config::Bootstrap& b = config_->bootstrap;
  unsigned n = b.workers ? b.workers : std::max(1u, std::thread::hardware_concurrency());
  control_.workers = n;
  snapshot_ = filters_->build(config_, version_, health_);
  control_.configVersion = version_;

  // Every worker gets its own SO_REUSEPORT socket per listener; the kernel spreads
  // connections across them, and no accept lock is shared.
  if (config::ConfigErrors errors = prepareConfigFiles(*config_, true, tls_, *filters_);
      !errors.empty()) {
    for (const auto& e : errors) TETHER_LOG(kError, e.format());
    return 1;
  }
  std::vector<std::vector<ListenerSocket>> perWorker(n);
  for (const auto& lc : b.listeners) {
    config::Address addr = lc.address;
    auto counter = std::make_shared<std::atomic<uint32_t>>(0);
    std::shared_ptr<TlsContextSlot> tls;
    if (lc.tls) {
      std::string error;
      tls = tls_.server(*lc.tls, error);
    }
    for (unsigned i = 0; i < n; ++i) {
      int fd = openListeningSocket(addr, 1024, true);
      if (fd < 0) {
        TETHER_LOG(kError, "listener " + lc.name + ": cannot listen on " + lc.address.toString() +
                               ": " + std::strerror(-fd));
        for (auto& list : perWorker) {
          for (auto& s : list) ::close(s.fd);
        }
        return 1;
      }
      ListenerSocket s{lc, fd, counter, tls};
      s.config.address = addr;  // port 0 resolved by the first bind
      perWorker[i].push_back(s);
    }
    TETHER_LOG(kInfo, "listener " + lc.name + " (" + config::toString(lc.direction) + ") on " +
                          addr.toString());
    boundListeners_[lc.name] = addr;
  }

  admin_ = std::make_unique<AdminServer>(
      &loop_, [this](const AdminRequest& r, AdminRespond respond) { handleAdmin(r, respond); },
      [this](int err) {
        control_.acceptPauses[std::string("admin") + '\0' + acceptPauseReason(err)]++;
      });
  config::Address adminAddr = b.admin;
  int rc = admin_->listen(adminAddr);
  if (rc != 0) {
    TETHER_LOG(kError, "admin: cannot listen on " + b.admin.toString() + ": " + uv_strerror(rc));
    for (auto& list : perWorker) {
      for (auto& s : list) ::close(s.fd);
    }
    return 1;
  }
  TETHER_LOG(kInfo, "admin on " + adminAddr.toString());

  if (!b.accessLog.path.empty()) {
    accessLogFd_ =
        b.accessLog.path == "-"
            ? STDOUT_FILENO
            : ::open(b.accessLog.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (accessLogFd_ < 0) {
      TETHER_LOG(kError,
                 "access log: cannot open " + b.accessLog.path + ": " + std::strerror(errno));
      return 1;
    }
  }
  if (b.runAs && geteuid() == 0) {
    // Listeners, admin and log are open: the rest runs as the user iptables exempts.
    if (setgroups(0, nullptr) != 0 || setgid(b.runAs->gid) != 0 || setuid(b.runAs->uid) != 0) {
      TETHER_LOG(kError, "runAs: cannot become uid " + std::to_string(b.runAs->uid) + " gid " +
                             std::to_string(b.runAs->gid) + ": " + std::strerror(errno));
      return 1;
    }
    // setuid() cleared the dumpable flag: keep core dumps (and LeakSanitizer) working.
    prctl(PR_SET_DUMPABLE, 1);
    TETHER_LOG(kInfo, "running as uid " + std::to_string(b.runAs->uid) + " gid " +
                          std::to_string(b.runAs->gid));
  }
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(
        std::make_unique<Worker>(static_cast<int>(i), b, snapshot_, std::move(perWorker[i]), tls_));
    if (accessLogFd_ >= 0) workers_.back()->setAccessLogFd(accessLogFd_);
    if (std::string error = workers_.back()->start(); !error.empty()) {
      workers_.pop_back();
      return failStart("worker " + std::to_string(i) + ": " + error);
    }
  }

  std::string signalError = signals_.start(&loop_, {SIGTERM, SIGINT, SIGHUP}, [this](int sig) {
    if (sig == SIGHUP) {
      reload("SIGHUP");
      return;
    }
    // The second SIGTERM/SIGINT does not wait for anything.
    if (++signalsSeen_ > 1) {
      TETHER_LOG(kWarn, "second signal: exiting now");
      _exit(0);
    }
    TETHER_LOG(kInfo,
               std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining");
    beginShutdown(true);
  });
  if (!signalError.empty()) return failStart(signalError);

  healthChecker_ = std::make_unique<HealthChecker>(
      &loop_, health_, [this](ProbeSpec spec, std::function<void(ProbeResult)> done) {
        probe(std::move(spec), std::move(done));
      });
  healthChecker_->update(*config_);
  // DNS answers arrive later; each change is published like a reload of the same rules.
  dns_ = std::make_unique<DnsDiscovery>(&loop_, discovered_, [this] {
    if (draining_) return;
    publish(discovered_.apply(baseConfig_));
    TETHER_LOG(kInfo, "dns: now serving version " + std::to_string(version_));
  });
  dns_->update(*baseConfig_);
  tlsReloadTimer_ = std::make_unique<Timer>(&loop_, [this] {
    if (int n = tls_.reloadChanged()) {
      TETHER_LOG(kInfo,
                 "tls: " + std::to_string(n) + " certificate(s) reloaded from changed files");
    }
    if (int n = filters_->reloadChangedFiles()) {
      TETHER_LOG(kInfo, "hmac: " + std::to_string(n) + " secret(s) reloaded from changed files");
    }
  });
  tlsReloadTimer_->start(std::chrono::seconds(2), std::chrono::seconds(2));
  updateReadinessCheck();
  TETHER_LOG(kInfo, "tether started: " + std::to_string(n) + " worker(s), config " +
                        config_->hash.substr(0, 12) + ", " +
                        std::to_string(config_->documents.size()) + " rule document(s)");
  for (auto& p : plugins_) p->start(*this);
  for (auto& p : plugins_) p->onApplied(*baseConfig_);
  started_ = true;
  notifyReady();
  return 0;
}

int Server::failStart(const std::string& why) {
  TETHER_LOG(kError, why);
  // Workers already running stop and join before run() returns.
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker] { worker->stop(); });
    worker->join();
  }
  workers_.clear();
  signals_.close();
  return 1;
}

int Server::run() {
  int rc = start();
  if (rc != 0) {
    admin_.reset();
    tasks_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return rc;
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) TETHER_LOG(kDebug, "control loop not empty at exit");
  TETHER_LOG(kInfo, "tether stopped");
  return 0;
}

config::Address Server::listenerAddress(const std::string& name) const {
  auto it = boundListeners_.find(name);
  return it == boundListeners_.end() ? config::Address{} : it->second;
}

bool Server::ready() const { return localAppReady_ && !draining_; }

std::string Server::readyReason() const {
  if (draining_) return "draining";
  if (!localAppReady_) return "local app not ready";
  return "ready";
}

void Server::updateReadinessCheck() {
  // localApp.readiness.path may come and go with a reload.
  if (config_->bootstrap.localApp.readinessPath) {
    if (readinessTimer_) return;
    readinessTimer_ = std::make_unique<Timer>(&loop_, [this] { checkReadiness(); });
    readinessTimer_->start(std::chrono::milliseconds(0), std::chrono::seconds(1));
  } else {
    readinessTimer_.reset();
    if (!localAppReady_) {
      localAppReady_ = true;
      if (started_) notifyReady();  // at start, start() tells the plugins
    }
  }
}

void Server::checkReadiness() {
  const auto& app = config_->bootstrap.localApp;
  if (!app.readinessPath) return;
  ProbeSpec spec;
  spec.type = config::HealthCheckType::kHttp;
  spec.address = app.address;
  spec.key = app.address.toString();
  spec.authority = spec.key;
  spec.path = *app.readinessPath;
  spec.timeout = std::chrono::seconds(1);
  probe(std::move(spec), [this](ProbeResult result) {
    bool ok = result.ok;
    if (ok != localAppReady_) {
      TETHER_LOG(kInfo,
                 std::string("local app ") + (ok ? "ready" : "not ready (" + result.detail + ")"));
    }
    localAppReady_ = ok;
    notifyReady();
  });
}

void Server::probe(ProbeSpec spec, std::function<void(ProbeResult)> done) {
  // The first worker runs every probe with its pools: a check speaks the codec, TLS and
  // HTTP/2 settings traffic uses, and an HTTP/1.1 check's connection is kept alive.
  if (workers_.empty() || finished_) return;
  Worker* worker = workers_.front().get();
  TaskQueue* back = tasks_.get();
  worker->post([worker, back, spec = std::move(spec), done = std::move(done)]() mutable {
    runProbe(*worker, std::move(spec), [back, done = std::move(done)](ProbeResult result) {
      back->post([done, result = std::move(result)] { done(result); });
    });
  });
}

void Server::notifyReady() {
  bool now = ready();
  if (now == lastReady_) return;
  lastReady_ = now;
  for (auto& p : plugins_) p->onReadyChanged(now);
}

struct Server::ReloadJob {
  uv_work_t req;
  Server* server;
  std::function<config::LoadResult()> load;
  config::LoadResult result;
  std::string trigger;
  std::vector<ReloadDone> done;
};

void Server::reload(const std::string& trigger, ReloadDone done) {
  if (draining_) {
    ReloadOutcome out;
    out.result = ReloadOutcome::Result::kUnchanged;
    out.version = version_;
    if (done) done(out);
    return;
  }
  reloadWanted_ = true;
  reloadTrigger_ = trigger;
  reloadWaiting_.push_back(std::move(done));
  startReload();
}

void Server::startReload() {
  if (reloadRunning_ || !reloadWanted_) return;
  reloadWanted_ = false;
  reloadRunning_ = true;
  auto* job = new ReloadJob;
  job->req.data = job;
  job->server = this;
  job->load = loader_();
  job->trigger = std::move(reloadTrigger_);
  job->done.swap(reloadWaiting_);
  // Fails only for a null callback: never here.
  uv_queue_work(
      &loop_, &job->req,
      [](uv_work_t* req) {
        auto* j = static_cast<ReloadJob*>(req->data);
        j->result = j->load();
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<ReloadJob> j(static_cast<ReloadJob*>(req->data));
        Server* self = j->server;
        self->reloadRunning_ = false;
        ReloadOutcome out = self->applyLoaded(j->trigger, std::move(j->result));
        for (auto& done : j->done) {
          if (done) done(out);
        }
        j.reset();  // a rejected candidate goes now, before the next is read
        self->startReload();
      });
}

ReloadOutcome Server::applyLoaded(const std::string& trigger, config::LoadResult r) {
  ReloadOutcome out;
  out.version = version_;
  if (draining_) {
    out.result = ReloadOutcome::Result::kUnchanged;
    return out;
  }
  config::ConfigErrors errors = std::move(r.errors);
  if (r.config) errors = prepareConfigFiles(*r.config, false, tls_, *filters_);
  if (!errors.empty()) {
    lastRejection_ = errors;
    lastRejectionTrigger_ = trigger;
    if (r.unreadable) {
      // Not a verdict on the content: the files could not be read (descriptors exhausted,
      // a file mid-swap). The next change or poll tries again.
      control_.reloads["unreadable"]++;
      for (const auto& e : errors) {
        TETHER_LOG(kError, "reload (" + trigger +
                               "): cannot read the configuration, still serving version " +
                               std::to_string(version_) + ": " + e.format());
      }
    } else {
      control_.reloads["rejected"]++;
      for (const auto& e : errors) TETHER_LOG(kError, "reload rejected: " + e.format());
    }
    out.errors = std::move(errors);
    scheduleTrim();
    return out;
  }
  if (r.config->hash == baseConfig_->hash) {
    control_.reloads["unchanged"]++;
    TETHER_LOG(kInfo, "reload (" + trigger + "): configuration unchanged");
    out.result = ReloadOutcome::Result::kUnchanged;
    return out;
  }
  std::vector<std::string> restart = restartRequired(startBootstrap_, r.config->bootstrap);
  baseConfig_ = r.config;
  lastRejection_.clear();
  dns_->update(*baseConfig_);
  publish(discovered_.apply(baseConfig_));
  restartRequired_ = restart;
  updateReadinessCheck();
  if (restart.empty()) {
    control_.reloads["applied"]++;
    TETHER_LOG(kInfo, "reload (" + trigger + "): now serving version " + std::to_string(version_));
  } else {
    // Applied, but not all of it: these sections keep their start-time values.
    control_.reloads["restart_required"]++;
    std::string fields;
    for (const auto& f : restart) fields += (fields.empty() ? "" : ", ") + f;
    TETHER_LOG(kWarn, "reload (" + trigger + "): now serving version " + std::to_string(version_) +
                          "; restart required for: " + fields + " (still as at start)");
  }
  for (auto& p : plugins_) p->onApplied(*baseConfig_);
  out.result = ReloadOutcome::Result::kApplied;
  out.version = version_;
  scheduleTrim();
  return out;
}

void Server::scheduleTrim() {
  // Workers drop the old snapshot as they swap (at most a sweep later); then trim.
  if (!trimTimer_) trimTimer_ = std::make_unique<Timer>(&loop_, [] { malloc_trim(0); });
  trimTimer_->start(std::chrono::seconds(1));
}

void Server::setControlEndpoints(
    std::map<std::string, std::vector<config::EndpointConfig>> endpoints) {
  bool changed = false;
  for (const auto& name : controlServices_) {
    if (!endpoints.count(name)) changed |= discovered_.erase(name);
  }
  controlServices_.clear();
  for (auto& [name, list] : endpoints) {
    controlServices_.insert(name);
    changed |= discovered_.set(name, std::move(list));
  }
  if (changed && !draining_) {
    publish(discovered_.apply(baseConfig_));
    TETHER_LOG(kInfo, "control plane endpoints: now serving version " + std::to_string(version_));
  }
}

std::vector<std::string> restartRequired(const config::Bootstrap& running,
                                         const config::Bootstrap& next) {
  std::vector<std::string> out;
  auto check = [&](bool same, const char* field) {
    if (!same) out.push_back(field);
  };
  // Listener configs are compared without the source positions of their file fields.
  auto listeners = [](std::vector<config::ListenerConfig> v) {
    for (auto& l : v) l.tlsFiles.clear();
    return v;
  };
  check(listeners(running.listeners) == listeners(next.listeners), "listeners");
  check(running.admin == next.admin, "admin");
  check(running.workers == next.workers, "workers");
  check(running.runAs == next.runAs, "runAs");
  check(running.node == next.node, "node");
  check(running.accessLog == next.accessLog, "accessLog");
  check(running.redis == next.redis, "redis");
  check(running.rules.controlPlane == next.rules.controlPlane, "rules.controlPlane");
  return out;
}

void Server::publish(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
  ++version_;
  snapshot_ = filters_->build(config_, version_, health_);
  health_.retain(*config_);  // older snapshots keep what they still reference
  healthChecker_->update(*config_);
  for (auto& w : workers_) w->setSnapshot(snapshot_);
  control_.configVersion = version_;
}

void Server::beginShutdown(bool exitAfter) {
  exiting_ = exiting_ || exitAfter;
  if (draining_) {
    if (exiting_ && workersDraining_) pollDrain();
    return;
  }
  // Withdraw from the control plane's registry before anything else, so that callers stop
  // sending here while this sidecar still serves them.
  for (auto& p : plugins_) p->onShutdown();
  draining_ = true;
  notifyReady();
  drainStarted_ = MonoClock::now();
  drainDeadline_ = drainStarted_ + config_->bootstrap.drainTimeout;
  if (readinessTimer_) readinessTimer_->stop();
  // /ready turns 503 first; the listeners keep accepting for the grace period so that
  // whoever routes to us (a kube Service, a load balancer) notices before we stop.
  drainTimer_ = std::make_unique<Timer>(&loop_, [this] { drainWorkers(); });
  drainTimer_->start(config_->bootstrap.drainGrace);
}

void Server::drainWorkers() {
  workersDraining_ = true;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker] { worker->drain(); });
  }
  TETHER_LOG(kInfo, "draining: stopped accepting, finishing in-flight requests");
  drainTimer_ = std::make_unique<Timer>(&loop_, [this] { pollDrain(); });
  drainTimer_->start(std::chrono::milliseconds(50), std::chrono::milliseconds(50));
}

void Server::pollDrain() {
  if (!exiting_) return;  // POST /drain only: keep serving what is open, never exit
  size_t open = 0;
  for (auto& w : workers_) open += w->activeConnections();
  bool timedOut = MonoClock::now() >= drainDeadline_;
  if (open == 0) {
    finish();
  } else if (timedOut && !aborting_) {
    aborting_ = true;
    TETHER_LOG(kWarn, "drain timeout: answering 503 draining and closing " + std::to_string(open) +
                          " connection(s)");
    for (auto& w : workers_) {
      Worker* worker = w.get();
      worker->post([worker] { worker->abortStreams(); });
    }
    // Give the 503s a moment to leave before the loops stop.
    drainTimer_ = std::make_unique<Timer>(&loop_, [this] { finish(); });
    drainTimer_->start(std::chrono::milliseconds(200));
  }
}

void Server::finish() {
  if (finished_) return;
  finished_ = true;
  drainTimer_.reset();
  readinessTimer_.reset();
  tlsReloadTimer_.reset();
  trimTimer_.reset();
  for (auto& p : plugins_) p->stop();
  healthChecker_.reset();
  dns_.reset();
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker] { worker->stop(); });
  }
  admin_.reset();
  signals_.close();
  tasks_->close();
}

}  // namespace tether::proxy
