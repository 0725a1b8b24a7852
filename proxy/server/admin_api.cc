// The admin API's answers (/clusters, /config_dump, /rules, the counters behind /metrics)
// and its dispatch, on the control loop.

#include "proxy/common/json.h"
#include "proxy/common/log.h"
#include "proxy/server/server.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/access_log.h"

namespace tether::proxy {

void Server::collectStats(std::function<void(WorkerStats)> done) {
  struct Gather {
    WorkerStats merged;
    size_t remaining;
    std::function<void(WorkerStats)> done;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = workers_.size();
  g->done = std::move(done);
  if (workers_.empty()) {
    g->done(WorkerStats{});
    return;
  }
  TaskQueue* back = tasks_.get();
  for (auto& w : workers_) {
    Worker* worker = w.get();
    // The copy is taken on the worker's own thread: no lock on its counters.
    worker->post([worker, back, g] {
      WorkerStats copy = worker->stats();
      if (AccessLogWriter* log = worker->accessLog()) {
        copy.accessLogLines = log->written();
        copy.accessLogDropped = log->dropped();
      }
      back->post([g, copy = std::move(copy)] {
        g->merged.merge(copy);
        if (--g->remaining == 0) g->done(std::move(g->merged));
      });
    });
  }
}

void Server::collectClusters(AdminRespond respond) {
  struct PoolInfo {
    size_t connections = 0, idle = 0;
  };
  struct Gather {
    std::map<std::string, PoolInfo> pools;
    size_t remaining;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = workers_.size();
  auto render = [this, respond](const std::map<std::string, PoolInfo>& pools) {
    JsonWriter j;
    j.beginObject();
    j.key("version").value(static_cast<int64_t>(version_));
    j.key("services").beginArray();
    for (const auto& [name, svc] : config_->services) {
      j.beginObject();
      j.key("name").value(name);
      // The weight in force, as the load balancer computes it: 0 while out of service
      // (unhealthy, ejected) unless the service is in panic (then every endpoint counts),
      // ramped by slow start.
      int64_t nowMs = steadyNowMs();
      size_t available = 0;
      for (const auto& e : svc.endpoints) {
        available += health_.endpoint(name, e.address.toString())->available(nowMs);
      }
      bool panic = available * 2 < svc.endpoints.size() || available == 0;
      auto window = svc.loadBalancer.slowStart;  // (clang 14 cannot capture a binding)
      auto inForce = [&](const config::EndpointConfig& e, const EndpointHealth& h) {
        if (!panic && !h.available(nowMs)) return 0.0;
        auto age = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - health_.firstSeen(e.addressText));
        return static_cast<double>(slowStartWeight(e.weight, age, window)) / 100.0;
      };
      j.key("panic").value(panic && !svc.endpoints.empty());
      j.key("endpoints").beginArray();
      for (const auto& e : svc.endpoints) {
        std::string addr = e.address.toString();
        auto it = pools.find(addr);
        PoolInfo pi = it == pools.end() ? PoolInfo{} : it->second;
        j.beginObject();
        j.key("address").value(addr);
        j.key("weight").value(static_cast<int64_t>(e.weight));
        EndpointHealthPtr h = health_.endpoint(name, addr);
        j.key("effectiveWeight").value(inForce(e, *h));
        j.key("labels").beginObject();
        for (const auto& [k, v] : e.labels) j.key(k).value(v);
        j.endObject();
        int state = h->active.load(std::memory_order_relaxed);
        j.key("health").value(state == EndpointHealth::kHealthy     ? "healthy"
                              : state == EndpointHealth::kUnhealthy ? "unhealthy"
                                                                    : "unchecked");
        int64_t until = h->ejectedUntilMs.load(std::memory_order_relaxed);
        int64_t now = steadyNowMs();
        j.key("ejected").value(until > now);
        j.key("ejectedForMs").value(until > now ? until - now : int64_t{0});
        j.key("timesEjected")
            .value(static_cast<int64_t>(h->timesEjected.load(std::memory_order_relaxed)));
        j.key("activeRequests").value(static_cast<int64_t>(pi.connections - pi.idle));
        j.key("connections").value(static_cast<int64_t>(pi.connections));
        j.key("idleConnections").value(static_cast<int64_t>(pi.idle));
        j.endObject();
      }
      j.endArray();
      j.endObject();
    }
    j.endArray();
    j.endObject();
    respond(AdminResponse{200, "application/json", j.str() + "\n"});
  };
  TaskQueue* back = tasks_.get();
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker, back, g, render] {
      std::map<std::string, PoolInfo> mine;
      for (const auto& [key, counts] : worker->pools().connectionCounts()) {
        mine[key] = PoolInfo{counts.first, counts.second};
      }
      back->post([g, mine = std::move(mine), render] {
        for (const auto& [k, v] : mine) {
          g->pools[k].connections += v.connections;
          g->pools[k].idle += v.idle;
        }
        if (--g->remaining == 0) render(g->pools);
      });
    });
  }
}

std::string Server::configDump() const {
  std::ostringstream out;
  out << "# tether config_dump\n";
  out << "version: " << version_ << "\n";
  out << "hash: " << config_->hash << "\n";
  out << "documents:\n";
  for (const auto& d : config_->documents) {
    out << "  - kind: " << d.kind << "\n    name: " << d.name << "\n    source: \"" << d.origin.file
        << ":" << d.origin.line << "\"\n    hash: " << d.hash << "\n    yaml: |\n";
    std::istringstream lines(d.yaml);
    std::string line;
    while (std::getline(lines, line)) out << "      " << line << "\n";
  }
  return out.str();
}

std::string Server::rulesJson() const {
  JsonWriter j;
  j.beginObject();
  j.key("version").value(static_cast<int64_t>(version_));
  j.key("hash").value(config_->hash);
  j.key("documents").beginArray();
  for (const auto& d : config_->documents) {
    j.beginObject();
    j.key("kind").value(d.kind);
    j.key("name").value(d.name);
    j.key("source").value(d.origin.file + ":" + std::to_string(d.origin.line));
    j.key("status").value("accepted");
    j.key("hash").value(d.hash);
    j.endObject();
  }
  j.endArray();
  // Bootstrap sections changed since start that only a restart applies.
  j.key("restartRequired").beginArray();
  for (const auto& f : restartRequired_) j.value(f);
  j.endArray();
  j.key("lastRejected");
  if (lastRejection_.empty()) {
    j.null();
  } else {
    j.beginObject();
    j.key("trigger").value(lastRejectionTrigger_);
    j.key("errors").beginArray();
    for (const auto& e : lastRejection_) j.value(e.format());
    j.endArray();
    // The same, by source (a file, or a control-plane document): which were refused, why.
    std::map<std::string, std::vector<std::string>> byFile;
    for (const auto& e : lastRejection_) byFile[e.file].push_back(e.format());
    j.key("sources").beginArray();
    for (const auto& [file, reasons] : byFile) {
      j.beginObject();
      j.key("source").value(file);
      j.key("status").value("rejected");
      j.key("reasons").beginArray();
      for (const auto& r : reasons) j.value(r);
      j.endArray();
      j.endObject();
    }
    j.endArray();
    j.endObject();
  }
  for (const auto& p : plugins_) p->describe(j);
  j.endObject();
  return j.str() + "\n";
}

void Server::handleAdmin(const AdminRequest& req, AdminRespond respond) {
  const std::string& p = req.path;
  bool get = req.method == "GET" || req.method == "HEAD";
  bool post = req.method == "POST";
  if (get && p == "/ready") {
    bool ok = ready();
    respond(AdminResponse{ok ? 200 : 503, "text/plain; charset=utf-8", readyReason() + "\n"});
  } else if (get && p == "/live") {
    respond(AdminResponse{200, "text/plain; charset=utf-8", "live\n"});
  } else if (get && p == "/metrics") {
    collectStats([this, respond](WorkerStats stats) {
      control_.ready = ready();
      control_.draining = draining_;
      respond(AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                            renderPrometheus(stats, control_, filters_->metrics())});
    });
  } else if (get && p == "/clusters") {
    collectClusters(respond);
  } else if (get && p == "/config_dump") {
    respond(AdminResponse{200, "application/yaml", configDump()});
  } else if (get && p == "/rules") {
    respond(AdminResponse{200, "application/json", rulesJson()});
  } else if (post && p == "/drain") {
    beginShutdown(false);
    respond(AdminResponse{200, "text/plain; charset=utf-8", "draining\n"});
  } else if (post && p == "/quitquitquit") {
    respond(AdminResponse{200, "text/plain; charset=utf-8", "exiting\n"});
    beginShutdown(true);
  } else if (post && p == "/reload") {
    reload("POST /reload", [this, respond](const ReloadOutcome& o) {
      respond(AdminResponse{o.result == ReloadOutcome::Result::kRejected ? 400 : 200,
                            "application/json", rulesJson()});
    });
  } else if (p == "/" || p == "/help") {
    respond(AdminResponse{200, "text/plain; charset=utf-8",
                          "GET  /ready /live /metrics /clusters /config_dump /rules\n"
                          "POST /drain /quitquitquit /reload\n"});
  } else {
    respond(AdminResponse{404, "text/plain; charset=utf-8", "not found\n"});
  }
}

}  // namespace tether::proxy
