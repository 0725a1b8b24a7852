#include "control/control_client.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <random>

#include "config/config.h"
#include "control/protocol.h"
#include "proxy/common/log.h"

namespace tether::control {

namespace {

int64_t epochSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

bool isWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

}  // namespace

ControlPlaneClient::ControlPlaneClient(std::shared_ptr<ConfigSource> source,
                                       std::optional<PushedSnapshot> restored)
    : source_(std::move(source)), restored_(std::move(restored)) {}

ControlPlaneClient::~ControlPlaneClient() = default;

void ControlPlaneClient::start(proxy::Server& server) {
  server_ = &server;
  acceptedDocuments_ = source_->controlPlaneDocuments();
  config_ = *server.config().bootstrap.rules.controlPlane;
  server.controlStats().controlPlaneConfigured = true;
  retry_ = std::make_unique<proxy::Timer>(server.loop(), [this] { connect(); });
  since_ = std::chrono::system_clock::now();
  if (restored_) {
    // Serving the cached snapshot already (main loaded its documents): its version is the
    // one to resume from, its endpoints apply now.
    ackedVersion_ = restored_->version;
    TETHER_LOG(kInfo, "control plane: serving version " + ackedVersion_ + " from the cache " +
                          config_.cacheFile + " until connected");
    server.setControlEndpoints(std::move(restored_->endpoints));
    restored_.reset();
  }
  connect();
}

void ControlPlaneClient::stop() {
  stopped_ = true;
  retry_.reset();
  if (channel_) channel_->close("stopping");  // onClosed frees it
}

void ControlPlaneClient::connect() {
  if (stopped_ || channel_) return;
  channel_ = std::make_unique<Channel>(server_->loop(), Channel::Role::kClient, *this);
  channel_->connect(config_.address);
}

void ControlPlaneClient::scheduleReconnect() {
  if (stopped_) return;
  // Exponential backoff with full jitter: a restarted control plane is not stampeded.
  backoff_ =
      backoff_.count() == 0
          ? std::chrono::duration_cast<std::chrono::milliseconds>(config_.initialBackoff)
          : std::min(backoff_ * 2,
                     std::chrono::duration_cast<std::chrono::milliseconds>(config_.maxBackoff));
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  auto wait = std::chrono::milliseconds(
      backoff_.count() / 2 +
      static_cast<int64_t>(rng() % static_cast<uint64_t>(backoff_.count() / 2 + 1)));
  retry_->start(wait);
}

std::string ControlPlaneClient::instanceAddress() const {
  const config::Bootstrap& b = server_->config().bootstrap;
  if (b.node.address) return b.node.address->toString();
  for (const auto& l : b.listeners) {
    if (l.direction != config::Direction::kInbound) continue;
    config::Address a = server_->listenerAddress(l.name);
    return isWildcard(a.host) ? std::string() : a.toString();
  }
  return "";
}

void ControlPlaneClient::onOpen(Channel& channel) {
  connected_ = true;
  ++connects_;
  backoff_ = std::chrono::milliseconds(0);
  since_ = std::chrono::system_clock::now();
  server_->controlStats().controlPlaneConnected = true;
  TETHER_LOG(kInfo, "control plane " + config_.address.toString() + ": connected" +
                        (ackedVersion_.empty() ? "" : ", resuming from version " + ackedVersion_));
  const config::Node& node = server_->config().bootstrap.node;
  proxy::JsonWriter j;
  j.beginObject();
  j.key("type").value("hello");
  j.key("node").beginObject();
  j.key("name").value(node.name);
  j.key("service").value(node.service);
  j.key("labels");
  writeLabels(j, node.labels);
  j.key("address").value(instanceAddress());
  j.endObject();
  j.key("version").value(ackedVersion_);
  j.endObject();
  channel.send(j.str());
  if (wantRegistered_) sendRegistration();
}

void ControlPlaneClient::sendRegistration() {
  if (!channel_ || !channel_->isOpen()) return;  // sent again on the next hello
  const config::Node& node = server_->config().bootstrap.node;
  std::string address = instanceAddress();
  proxy::JsonWriter j;
  j.beginObject();
  if (wantRegistered_ && !address.empty() && !node.service.empty()) {
    j.key("type").value("register");
    j.key("instance").beginObject();
    j.key("service").value(node.service);
    j.key("address").value(address);
    j.key("labels");
    writeLabels(j, node.labels);
    j.endObject();
  } else {
    j.key("type").value("withdraw");
  }
  j.endObject();
  channel_->send(j.str());
}

void ControlPlaneClient::onReadyChanged(bool ready) {
  if (shuttingDown_) return;
  if (ready == wantRegistered_) return;
  wantRegistered_ = ready;
  TETHER_LOG(kInfo, std::string("control plane: ") + (ready ? "registering" : "withdrawing") +
                        " the local instance");
  sendRegistration();
}

void ControlPlaneClient::onShutdown() {
  shuttingDown_ = true;
  if (!wantRegistered_) return;
  wantRegistered_ = false;
  TETHER_LOG(kInfo, "control plane: withdrawing the local instance before draining");
  sendRegistration();
}

void ControlPlaneClient::onMessage(Channel&, const proxy::JsonValue& message) {
  if (message["type"].str() == "snapshot") applySnapshot(message);
}

PushedSnapshot PushedSnapshot::parse(const proxy::JsonValue& m) {
  PushedSnapshot s;
  s.version = m["version"].str();
  for (const auto& d : m["documents"].items()) {
    s.documents.push_back(config::Source{d["name"].str(), d["yaml"].str()});
  }
  for (const auto& [service, list] : m["endpoints"].members()) {
    auto& out = s.endpoints[service];
    for (const auto& e : list.items()) {
      auto address = config::parseAddress(e["address"].str());
      if (!address) continue;
      config::EndpointConfig ep;
      ep.address = *address;
      ep.addressText = address->toString();
      double w = e["weight"].number(1);
      ep.weight = w >= 1 && w <= 1e6 ? static_cast<uint32_t>(w) : 1;
      for (const auto& [k, v] : e["labels"].members()) ep.labels[k] = v.str();
      out.push_back(std::move(ep));
    }
  }
  return s;
}

std::string PushedSnapshot::serialize() const {
  proxy::JsonWriter j;
  j.beginObject();
  j.key("type").value("snapshot");
  j.key("version").value(version);
  j.key("documents").beginArray();
  for (const auto& d : documents) {
    j.beginObject();
    j.key("name").value(d.name);
    j.key("yaml").value(d.content);
    j.endObject();
  }
  j.endArray();
  j.key("endpoints").beginObject();
  for (const auto& [service, list] : endpoints) {
    j.key(service).beginArray();
    for (const auto& e : list) {
      j.beginObject();
      j.key("address").value(e.addressText);
      j.key("weight").value(static_cast<int64_t>(e.weight));
      j.key("labels");
      writeLabels(j, e.labels);
      j.endObject();
    }
    j.endArray();
  }
  j.endObject();
  j.endObject();
  return j.str() + "\n";
}

std::optional<PushedSnapshot> PushedSnapshot::readCache(const std::string& path) {
  std::string text;
  if (!config::readFile(path, text)) return std::nullopt;
  auto m = proxy::JsonValue::parse(text);
  if (!m || (*m)["type"].str() != "snapshot" || (*m)["version"].str().empty()) {
    TETHER_LOG(kWarn, "control plane cache " + path + ": not a snapshot, ignored");
    return std::nullopt;
  }
  return parse(*m);
}

void PushedSnapshot::writeCache(const std::string& path) const {
  // A temporary file renamed over the old one: a crash never leaves half a cache.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << serialize();
    if (!out.flush()) {
      TETHER_LOG(kWarn, "control plane cache " + path + ": cannot write " + tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    TETHER_LOG(kWarn, "control plane cache " + path + ": cannot rename " + tmp);
  }
}

void ControlPlaneClient::applySnapshot(const proxy::JsonValue& m) {
  PushedSnapshot pushed = PushedSnapshot::parse(m);
  source_->setControlPlaneDocuments(pushed.documents);
  uint64_t push = ++pushes_;
  std::string trigger = "control plane version " + pushed.version;
  server_->reload(trigger, [this, alive = std::weak_ptr<bool>(alive_), push,
                            pushed = std::move(pushed)](const proxy::ReloadOutcome& o) mutable {
    if (!alive.expired()) answerPush(std::move(pushed), push, o);
  });
}

void ControlPlaneClient::answerPush(PushedSnapshot pushed, uint64_t push,
                                    const proxy::ReloadOutcome& outcome) {
  const std::string& version = pushed.version;
  const std::vector<config::Source>& docs = pushed.documents;
  proxy::JsonWriter j;
  j.beginObject();
  if (outcome.result == proxy::ReloadOutcome::Result::kRejected) {
    if (push == pushes_) source_->setControlPlaneDocuments(acceptedDocuments_);
    lastNack_ = Nack{version, {}};
    for (const auto& e : outcome.errors) {
      bool fromPush = false;
      for (const auto& d : docs) fromPush |= d.name == e.file;
      // An error in a local file fails the push too; it is named as such.
      lastNack_.reasons.emplace_back(fromPush ? e.file : "local:" + e.file, e.format());
    }
    server_->controlStats().controlPlaneUpdates["nack"]++;
    TETHER_LOG(kWarn, "control plane version " + version + " rejected (NACK), keeping version " +
                          (ackedVersion_.empty() ? "none" : ackedVersion_));
    j.key("type").value("nack");
    j.key("version").value(version);
    j.key("running").value(ackedVersion_);
    j.key("errors");
    writeReasons(j, lastNack_.reasons);
  } else {
    ackedVersion_ = version;
    acceptedDocuments_ = docs;
    if (!config_.cacheFile.empty()) pushed.writeCache(config_.cacheFile);
    auto endpoints = std::move(pushed.endpoints);
    server_->setControlEndpoints(std::move(endpoints));
    server_->controlStats().controlPlaneUpdates["ack"]++;
    j.key("type").value("ack");
    j.key("version").value(version);
  }
  j.endObject();
  if (channel_) channel_->send(j.str());
}

void ControlPlaneClient::onClosed(Channel&, const std::string& why) {
  bool was = connected_;
  connected_ = false;
  lastError_ = why;  // a copy: `why` lives in the channel
  channel_.reset();  // it called us as its last act
  if (server_) server_->controlStats().controlPlaneConnected = false;
  if (stopped_) return;
  if (was) {
    since_ = std::chrono::system_clock::now();
    TETHER_LOG(kWarn, "control plane " + config_.address.toString() + ": disconnected (" +
                          lastError_ + "); serving version " +
                          (ackedVersion_.empty() ? "none" : ackedVersion_) + " meanwhile");
  }
  scheduleReconnect();
}

void ControlPlaneClient::describe(proxy::JsonWriter& j) const {
  j.key("controlPlane").beginObject();
  j.key("address").value(config_.address.toString());
  j.key("connected").value(connected_);
  j.key(connected_ ? "connectedSince" : "disconnectedSince")
      .value(static_cast<int64_t>(epochSeconds(since_)));
  j.key("ackedVersion").value(ackedVersion_);
  j.key("connects").value(static_cast<int64_t>(connects_));
  if (!connected_) j.key("lastError").value(lastError_);
  j.key("documents").beginArray();
  for (const auto& d : source_->controlPlaneDocuments()) j.value(d.name);
  j.endArray();
  j.key("lastNack");
  if (lastNack_.version.empty()) {
    j.null();
  } else {
    j.beginObject();
    j.key("version").value(lastNack_.version);
    j.key("errors");
    writeReasons(j, lastNack_.reasons);
    j.endObject();
  }
  j.endObject();
}

}  // namespace tether::control
