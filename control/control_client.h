#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/channel.h"
#include "control/config_source.h"
#include "control/protocol.h"
#include "proxy/common/timer.h"
#include "proxy/server/server.h"

namespace tether::control {

/// A control-plane snapshot as pushed: its version, documents and endpoints. Also the
/// format of rules.controlPlane.cacheFile (the last acked snapshot).
struct PushedSnapshot {
  std::string version;
  std::vector<config::Source> documents;
  std::map<std::string, std::vector<config::EndpointConfig>> endpoints;

  static PushedSnapshot parse(const proxy::JsonValue& message);
  std::string serialize() const;
  /// The cached snapshot, or nullopt (no file, or not a snapshot: logged).
  static std::optional<PushedSnapshot> readCache(const std::string& path);
  /// Writes the cache atomically (a temporary file renamed over it).
  void writeCache(const std::string& path) const;
};

/// The sidecar's end of the control-plane API (docs/control-plane.md): one stream to
/// rules.controlPlane.address, opened with the node identity; each pushed snapshot is
/// loaded with the local rules and answered with ACK or NACK (per-document reasons, the
/// old rules kept). Reconnects with exponential backoff and jitter, resuming from the
/// last acked version; while away, the last good rules serve and /ready is unaffected.
/// Registers the local instance once the app is ready and withdraws it first thing on
/// shutdown.
class ControlPlaneClient : public proxy::ControlPlugin, public Channel::Handler {
 public:
  /// `restored`: the cached snapshot whose documents `source` already holds (main loaded
  /// them before the first configuration was built).
  explicit ControlPlaneClient(std::shared_ptr<ConfigSource> source,
                              std::optional<PushedSnapshot> restored = std::nullopt);
  ~ControlPlaneClient() override;

  // ControlPlugin
  void start(proxy::Server& server) override;
  void onReadyChanged(bool ready) override;
  void onShutdown() override;
  void describe(proxy::JsonWriter& j) const override;
  void stop() override;

  // Channel::Handler
  void onOpen(Channel& channel) override;
  void onMessage(Channel& channel, const proxy::JsonValue& message) override;
  void onClosed(Channel& channel, const std::string& why) override;

 private:
  void connect();
  void scheduleReconnect();
  void applySnapshot(const proxy::JsonValue& message);
  /// ACK or NACK for push number `push` once its reload is done.
  void answerPush(PushedSnapshot pushed, uint64_t push, const proxy::ReloadOutcome& outcome);
  void sendRegistration();
  /// Where other sidecars reach this instance; empty when it cannot be registered.
  std::string instanceAddress() const;

  std::shared_ptr<ConfigSource> source_;
  std::optional<PushedSnapshot> restored_;
  proxy::Server* server_ = nullptr;
  config::ControlPlaneConfig config_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<proxy::Timer> retry_;
  std::chrono::milliseconds backoff_{0};
  std::string ackedVersion_;
  bool connected_ = false;
  std::chrono::system_clock::time_point since_{};  // connected or disconnected since
  std::string lastError_;                          // why the last connection ended
  uint64_t connects_ = 0;
  struct Nack {
    std::string version;
    NackReasons reasons;
  } lastNack_;
  bool wantRegistered_ = false;  // the local app is ready and we are not shutting down
  bool shuttingDown_ = false;
  bool stopped_ = false;
  // Reloads finish later (off the control loop): a NACK puts back the documents last
  // accepted, unless a newer push has replaced them meanwhile (its own answer decides).
  std::vector<config::Source> acceptedDocuments_;
  uint64_t pushes_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for reload callbacks
};

}  // namespace tether::control
