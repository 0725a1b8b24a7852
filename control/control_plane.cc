#include "control/control_plane.h"

#include <dirent.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "config/config.h"
#include "control/protocol.h"
#include "proxy/common/json.h"
#include "proxy/common/log.h"

namespace tether::control {

namespace {

constexpr size_t kMaxQueuedBytes = 32 << 20;

int64_t epochNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

long rssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

/// The rule files of `dir`: *.yaml and *.yml, sorted, hidden ones (editors' temporaries,
/// a ConfigMap's ..data) left out.
std::vector<std::string> ruleFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    auto endsWith = [&](const char* suffix) {
      size_t n = std::strlen(suffix);
      return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
    };
    if (endsWith(".yaml") || endsWith(".yml")) out.push_back(name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ControlPlaneServer::ControlPlaneServer(ControlPlaneOptions options) : options_(std::move(options)) {
  uv_loop_init(&loop_);
}

ControlPlaneServer::~ControlPlaneServer() { uv_loop_close(&loop_); }

int ControlPlaneServer::run() {
  // One descriptor per connected sidecar: thousands of them.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // Versions start at the clock (milliseconds): a restarted control plane never reuses a
  // version an older one gave out, so a resuming sidecar is never told stale news is new.
  version_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
  loadRules();
  int fd = proxy::openListeningSocket(options_.listen, 4096, false);
  if (fd < 0) {
    TETHER_LOG(kError, "control plane: cannot listen on " + options_.listen.toString() + ": " +
                           std::strerror(-fd));
    return 1;
  }
  listener_ = std::make_unique<proxy::Acceptor>(
      &loop_, fd, "control",
      [this](int fd) {
        if (stopping_) {
          ::close(fd);
          return;
        }
        auto sidecar = std::make_unique<Sidecar>();
        sidecar->channel = std::make_unique<Channel>(&loop_, Channel::Role::kServer, *this);
        sidecar->connectedSince = epochNow();
        Channel* c = sidecar->channel.get();
        sidecars_[c] = std::move(sidecar);
        c->adopt(fd);  // on failure onClosed removes it
      },
      nullptr);
  admin_ = std::make_unique<proxy::AdminServer>(
      &loop_, [this](const proxy::AdminRequest& r, proxy::AdminRespond respond) {
        handleAdmin(r, std::move(respond));
      });
  if (int a = admin_->listen(options_.admin); a != 0) {
    TETHER_LOG(kError, "control plane: cannot listen on " + options_.admin.toString() +
                           " (admin): " + uv_strerror(a));
    shutdown();
    uv_run(&loop_, UV_RUN_DEFAULT);
    return 1;
  }
  watcher_ = std::make_unique<FileWatcher>(
      &loop_, [this] { loadRules(); }, options_.debounce, std::chrono::seconds(2));
  watcher_->watch({options_.rulesDir + "/*.yaml", options_.rulesDir + "/*.yml"});
  sweep_ = std::make_unique<proxy::Timer>(&loop_, [this] { expireInstances(); });
  sweep_->start(std::chrono::milliseconds(200), std::chrono::milliseconds(200));
  if (std::string error = signals_.start(&loop_, {SIGTERM, SIGINT}, [this](int) { shutdown(); });
      !error.empty()) {
    TETHER_LOG(kError, "control plane: " + error);
    shutdown();
    uv_run(&loop_, UV_RUN_DEFAULT);
    return 1;
  }
  TETHER_LOG(kInfo, "control plane on " + options_.listen.toString() + " (admin " +
                        options_.admin.toString() + "), serving " + options_.rulesDir +
                        ": version " + std::to_string(version_) + ", " +
                        std::to_string(documents_.size()) + " document(s)");
  uv_run(&loop_, UV_RUN_DEFAULT);
  TETHER_LOG(kInfo, "control plane stopped");
  return 0;
}

void ControlPlaneServer::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  watcher_.reset();
  sweep_.reset();
  if (admin_) admin_->close();
  listener_.reset();
  signals_.close();
  std::vector<Channel*> open;
  for (auto& [c, s] : sidecars_) open.push_back(c);
  for (Channel* c : open) c->close("control plane stopping");
}

void ControlPlaneServer::loadRules() {
  std::vector<config::RuleDocumentText> docs;
  std::string all;
  for (const auto& name : ruleFiles(options_.rulesDir)) {
    std::string text;
    config::readFile(options_.rulesDir + "/" + name, text);  // gone meanwhile: empty
    for (auto& d : config::splitRuleDocuments(name, text)) {
      all += d.source + '\0' + d.text + '\0';
      docs.push_back(std::move(d));
    }
  }
  std::string digest = config::sha256Hex(all);
  if (digest == documentsDigest_) return;
  bool first = documentsDigest_.empty();
  documentsDigest_ = digest;
  documents_ = std::move(docs);
  if (!first) bump("rules changed: " + std::to_string(documents_.size()) + " document(s)");
}

void ControlPlaneServer::bump(const std::string& why) {
  ++version_;
  snapshotCache_.clear();
  TETHER_LOG(kInfo, "control plane: version " + std::to_string(version_) + " (" + why + ")");
  pushedAt_ = std::chrono::steady_clock::now();
  fanoutMs_.reset();
  fanoutPending_ = 0;
  for (auto& [c, s] : sidecars_) {
    s->awaited = s->hello && c->isOpen();
    fanoutPending_ += s->awaited;
  }
  fanoutSidecars_ = fanoutPending_;
  for (auto& [c, s] : sidecars_) {
    if (s->hello && c->isOpen()) push(*s);
  }
  if (fanoutPending_ == 0) fanoutMs_ = 0;
}

const std::string& ControlPlaneServer::snapshotFor(const Sidecar& s) {
  std::string key;
  std::vector<const config::RuleDocumentText*> selected;
  for (size_t i = 0; i < documents_.size(); ++i) {
    if (!documents_[i].selects(s.service, s.labels)) continue;
    selected.push_back(&documents_[i]);
    key += std::to_string(i) + ',';
  }
  auto it = snapshotCache_.find(key);
  if (it != snapshotCache_.end()) return it->second;
  proxy::JsonWriter j;
  j.beginObject();
  j.key("type").value("snapshot");
  j.key("version").value(std::to_string(version_));
  j.key("documents").beginArray();
  for (const auto* d : selected) {
    j.beginObject();
    j.key("name").value(d->source);
    j.key("yaml").value(d->text);
    j.endObject();
  }
  j.endArray();
  // Registered instances, by service: every sidecar sees them as that Service's endpoints.
  std::map<std::string, std::vector<const Instance*>> byService;
  for (const auto& [node, inst] : instances_) byService[inst.service].push_back(&inst);
  j.key("endpoints").beginObject();
  for (const auto& [service, list] : byService) {
    j.key(service).beginArray();
    for (const auto* inst : list) {
      j.beginObject();
      j.key("address").value(inst->address);
      j.key("labels");
      writeLabels(j, inst->labels);
      j.endObject();
    }
    j.endArray();
  }
  j.endObject();
  j.endObject();
  return snapshotCache_.emplace(key, j.str()).first->second;
}

void ControlPlaneServer::push(Sidecar& s) {
  // A sidecar that stopped reading would make its queue grow with every push: drop it (it
  // reconnects, and then gets only the newest version).
  if (s.channel->pendingBytes() > kMaxQueuedBytes) {
    s.channel->close("not reading: " + std::to_string(s.channel->pendingBytes()) + " bytes queued");
    return;
  }
  s.sentVersion = version_;
  ++pushes_;
  s.channel->send(snapshotFor(s));
}

void ControlPlaneServer::answered(Sidecar& s) {
  if (!s.awaited) return;
  s.awaited = false;
  if (fanoutPending_ > 0 && --fanoutPending_ == 0) {
    fanoutMs_ =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - pushedAt_)
            .count();
    TETHER_LOG(kInfo, "control plane: version " + std::to_string(version_) + " answered by all " +
                          std::to_string(fanoutSidecars_) + " sidecar(s) in " +
                          std::to_string(static_cast<int64_t>(*fanoutMs_)) + " ms");
  }
}

void ControlPlaneServer::onMessage(Channel& channel, const proxy::JsonValue& m) {
  auto it = sidecars_.find(&channel);
  if (it == sidecars_.end()) return;
  Sidecar& s = *it->second;
  const std::string& type = m["type"].str();
  if (type == "hello") {
    const proxy::JsonValue& node = m["node"];
    s.hello = true;
    s.name = node["name"].str();
    s.service = node["service"].str();
    s.address = node["address"].str();
    s.labels.clear();
    for (const auto& [k, v] : node["labels"].members()) s.labels[k] = v.str();
    // A sidecar that reconnects keeps its registered instance.
    auto inst = instances_.find(s.name);
    if (inst != instances_.end()) inst->second.expiresAt.reset();
    // Resuming at the current version: nothing to send.
    if (m["version"].str() == std::to_string(version_)) {
      s.sentVersion = s.ackedVersion = version_;
    } else {
      push(s);
    }
    TETHER_LOG(kInfo,
               "control plane: sidecar " + s.name + " (" + s.service + ") connected" +
                   (m["version"].str().empty() ? "" : ", had version " + m["version"].str()));
  } else if (type == "ack") {
    s.ackedVersion = std::strtoull(m["version"].str().c_str(), nullptr, 10);
    ++acks_;
    if (s.ackedVersion == version_) answered(s);
  } else if (type == "nack") {
    s.nackVersion = std::strtoull(m["version"].str().c_str(), nullptr, 10);
    s.nackReasons.clear();
    for (const auto& e : m["errors"].items()) {
      s.nackReasons.emplace_back(e["document"].str(), e["reason"].str());
    }
    ++nacks_;
    TETHER_LOG(kWarn, "control plane: sidecar " + s.name + " rejected version " +
                          std::to_string(s.nackVersion) + ": " +
                          (s.nackReasons.empty() ? std::string("?") : s.nackReasons[0].second));
    if (s.nackVersion == version_) answered(s);
  } else if (type == "register" && s.hello) {
    const proxy::JsonValue& i = m["instance"];
    Instance inst{s.name, i["service"].str(), i["address"].str(), {}, std::nullopt};
    for (const auto& [k, v] : i["labels"].members()) inst.labels[k] = v.str();
    if (inst.service.empty() || !config::parseAddress(inst.address)) return;
    auto old = instances_.find(s.name);
    if (old != instances_.end() && old->second.service == inst.service &&
        old->second.address == inst.address && old->second.labels == inst.labels) {
      old->second.expiresAt.reset();
      return;
    }
    instances_[s.name] = inst;
    bump("registered " + inst.service + " " + inst.address + " (" + s.name + ")");
  } else if (type == "withdraw" && s.hello) {
    auto old = instances_.find(s.name);
    if (old == instances_.end()) return;
    std::string what = old->second.service + " " + old->second.address;
    instances_.erase(old);
    bump("withdrew " + what + " (" + s.name + ")");
  }
}

void ControlPlaneServer::onClosed(Channel& channel, const std::string& why) {
  auto it = sidecars_.find(&channel);
  if (it == sidecars_.end()) return;
  std::unique_ptr<Sidecar> s = std::move(it->second);
  sidecars_.erase(it);
  answered(*s);
  if (!s->hello && !stopping_) {
    TETHER_LOG(kInfo, "control plane: a connection closed before its hello (" + why + ")");
  }
  if (s->hello && !stopping_) {
    TETHER_LOG(kInfo, "control plane: sidecar " + s->name + " disconnected (" + why + ")");
    auto inst = instances_.find(s->name);
    // Its instance may be back in a moment (a reconnect); gone for good after the grace.
    if (inst != instances_.end()) {
      inst->second.expiresAt = std::chrono::steady_clock::now() + options_.instanceGrace;
    }
  }
  // `s` (and its channel) go here: the channel called us as its last act.
}

void ControlPlaneServer::expireInstances() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> gone;
  for (const auto& [node, inst] : instances_) {
    if (inst.expiresAt && *inst.expiresAt <= now) gone.push_back(node);
  }
  for (const auto& node : gone) {
    std::string what = instances_[node].service + " " + instances_[node].address;
    instances_.erase(node);
    bump("expired " + what + " (" + node + " gone)");
  }
}

void ControlPlaneServer::handleAdmin(const proxy::AdminRequest& req, proxy::AdminRespond respond) {
  if (req.method == "GET" && req.path == "/sidecars") {
    respond(proxy::AdminResponse{200, "application/json", sidecarsJson()});
  } else if (req.method == "GET" && req.path == "/metrics") {
    respond(proxy::AdminResponse{200, "text/plain; version=0.0.4", metricsText()});
  } else if (req.method == "GET" && req.path == "/live") {
    respond(proxy::AdminResponse{200, "text/plain; charset=utf-8", "live\n"});
  } else {
    respond(
        proxy::AdminResponse{404, "text/plain; charset=utf-8", "GET /sidecars /metrics /live\n"});
  }
}

std::string ControlPlaneServer::sidecarsJson() const {
  proxy::JsonWriter j;
  j.beginObject();
  j.key("version").value(std::to_string(version_));
  j.key("documents").value(static_cast<int64_t>(documents_.size()));
  j.key("rssKiB").value(static_cast<int64_t>(rssKiB()));
  j.key("lastFanout").beginObject();
  j.key("version").value(std::to_string(version_));
  j.key("sidecars").value(static_cast<int64_t>(fanoutSidecars_));
  j.key("pending").value(static_cast<int64_t>(fanoutPending_));
  j.key("ms");
  if (fanoutMs_) {
    j.value(*fanoutMs_);
  } else {
    j.null();
  }
  j.endObject();
  std::vector<const Sidecar*> list;
  for (const auto& [c, s] : sidecars_) {
    if (s->hello) list.push_back(s.get());
  }
  std::sort(list.begin(), list.end(),
            [](const Sidecar* a, const Sidecar* b) { return a->name < b->name; });
  j.key("sidecars").beginArray();
  for (const Sidecar* s : list) {
    j.beginObject();
    j.key("name").value(s->name);
    j.key("service").value(s->service);
    j.key("address").value(s->address);
    j.key("labels");
    writeLabels(j, s->labels);
    j.key("connectedSince").value(s->connectedSince);
    j.key("sentVersion").value(std::to_string(s->sentVersion));
    j.key("ackedVersion").value(s->ackedVersion ? std::to_string(s->ackedVersion) : "");
    j.key("lastNack");
    if (s->nackVersion == 0) {
      j.null();
    } else {
      j.beginObject();
      j.key("version").value(std::to_string(s->nackVersion));
      j.key("errors");
      writeReasons(j, s->nackReasons);
      j.endObject();
    }
    j.endObject();
  }
  j.endArray();
  j.key("instances").beginArray();
  for (const auto& [node, inst] : instances_) {
    j.beginObject();
    j.key("node").value(node);
    j.key("service").value(inst.service);
    j.key("address").value(inst.address);
    j.key("labels");
    writeLabels(j, inst.labels);
    j.key("connected").value(!inst.expiresAt.has_value());
    j.endObject();
  }
  j.endArray();
  j.endObject();
  return j.str() + "\n";
}

std::string ControlPlaneServer::metricsText() const {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  using prometheus::MetricType;
  std::vector<MetricFamily> families;
  auto one = [&](const char* name, const char* help, MetricType type, double value) {
    MetricFamily f{name, help, type, {}};
    ClientMetric m;
    if (type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f.metric.push_back(m);
    families.push_back(std::move(f));
  };
  size_t connected = 0;
  for (const auto& [c, s] : sidecars_) connected += s->hello;
  one("tether_cp_sidecars_connected", "Sidecars with an open stream.", MetricType::Gauge,
      static_cast<double>(connected));
  one("tether_cp_version", "The version being served.", MetricType::Gauge,
      static_cast<double>(version_));
  one("tether_cp_documents", "Rule documents in the rules directory.", MetricType::Gauge,
      static_cast<double>(documents_.size()));
  one("tether_cp_instances", "Registered instances.", MetricType::Gauge,
      static_cast<double>(instances_.size()));
  one("tether_cp_pushes_total", "Snapshots sent to sidecars.", MetricType::Counter,
      static_cast<double>(pushes_));
  one("tether_cp_acks_total", "ACKs received.", MetricType::Counter, static_cast<double>(acks_));
  one("tether_cp_nacks_total", "NACKs received.", MetricType::Counter, static_cast<double>(nacks_));
  if (fanoutMs_) {
    one("tether_cp_fanout_seconds",
        "Time from the newest version's push to the last sidecar's answer.", MetricType::Gauge,
        *fanoutMs_ / 1000.0);
  }
  one("tether_cp_resident_memory_bytes", "Resident memory of the control plane.", MetricType::Gauge,
      static_cast<double>(rssKiB()) * 1024.0);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace tether::control
