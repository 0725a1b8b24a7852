#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/documents.h"
#include "control/channel.h"
#include "control/file_watcher.h"
#include "control/protocol.h"
#include "proxy/common/signals.h"
#include "proxy/common/timer.h"
#include "proxy/server/admin.h"

namespace tether::control {

struct ControlPlaneOptions {
  std::string rulesDir;
  config::Address listen{"127.0.0.1", 15010};
  config::Address admin{"127.0.0.1", 15011};
  /// How long a disconnected sidecar's registered instance stays an endpoint (it may be
  /// reconnecting); a withdrawn one goes at once.
  std::chrono::milliseconds instanceGrace{10'000};
  std::chrono::milliseconds debounce{50};  // after the last write in the rules directory
};

/// `tether control-plane`: serves the rule documents of a directory to every connected
/// sidecar (narrowed by each document's `selector`), pushes a new version within about
/// 100 ms of a change, and keeps the registry of instances that sidecars register, pushed
/// to every sidecar as Service endpoints. Its admin port answers GET /sidecars (what
/// `tether status` prints), /metrics and /live. docs/control-plane.md.
class ControlPlaneServer : public Channel::Handler {
 public:
  explicit ControlPlaneServer(ControlPlaneOptions options);
  ~ControlPlaneServer() override;

  /// Runs until SIGTERM/SIGINT; returns the exit code.
  int run();

  // Channel::Handler
  void onOpen(Channel& channel) override {}
  void onMessage(Channel& channel, const proxy::JsonValue& message) override;
  void onClosed(Channel& channel, const std::string& why) override;

 private:
  struct Instance {
    std::string node;  // the sidecar that registered it
    std::string service;
    std::string address;
    config::Labels labels;
    std::optional<std::chrono::steady_clock::time_point> expiresAt;  // set while disconnected
  };
  struct Sidecar {
    std::unique_ptr<Channel> channel;
    bool hello = false;
    std::string name, service, address;
    config::Labels labels;
    int64_t connectedSince = 0;  // epoch seconds
    uint64_t sentVersion = 0;
    uint64_t ackedVersion = 0;
    uint64_t nackVersion = 0;
    bool awaited = false;  // counted in the fan-out of the newest version
    NackReasons nackReasons;
  };

  void loadRules();
  /// A new version: every sidecar gets its view of it.
  void bump(const std::string& why);
  void push(Sidecar& s);
  /// The snapshot message for a sidecar; sidecars with the same documents share one.
  const std::string& snapshotFor(const Sidecar& s);
  void expireInstances();
  void handleAdmin(const proxy::AdminRequest& req, proxy::AdminRespond respond);
  std::string sidecarsJson() const;
  std::string metricsText() const;
  void shutdown();
  /// `s` answered the newest version (or went away): the fan-out may be complete.
  void answered(Sidecar& s);

  ControlPlaneOptions options_;
  uv_loop_t loop_;
  std::unique_ptr<proxy::Acceptor> listener_;
  std::unique_ptr<proxy::AdminServer> admin_;
  std::unique_ptr<FileWatcher> watcher_;
  std::unique_ptr<proxy::Timer> sweep_;
  proxy::SignalWatch signals_;
  std::map<Channel*, std::unique_ptr<Sidecar>> sidecars_;
  std::map<std::string, Instance> instances_;  // by node name
  std::vector<config::RuleDocumentText> documents_;
  std::string documentsDigest_;
  uint64_t version_ = 1;
  std::map<std::string, std::string> snapshotCache_;  // selected documents -> message
  uint64_t pushes_ = 0;
  uint64_t acks_ = 0;
  uint64_t nacks_ = 0;
  // Fan-out of the newest version: when it went out, and when the last sidecar acked it.
  std::chrono::steady_clock::time_point pushedAt_{};
  std::optional<double> fanoutMs_;
  size_t fanoutSidecars_ = 0;
  size_t fanoutPending_ = 0;
  bool stopping_ = false;
};

}  // namespace tether::control
