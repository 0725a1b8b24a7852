#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/server/server.h"

namespace tether::control {

/// Watches configuration files and calls back once their content settles after a change.
///
/// Patterns are file paths or globs ("/etc/tether/rules/*.yaml"). The directory holding
/// each pattern is watched with uv_fs_event (so new files, atomic renames and Kubernetes'
/// ConfigMap symlink swaps are seen), and a slow poll re-checks everything as a safety net
/// (events can be lost: NFS, overlay filesystems, a directory that appears later).
/// Changes are debounced: `onChange` runs `debounce` after the first event of a burst (later
/// events do not push it back, so a steady stream of writes is applied every `debounce`),
/// and only when the content of the matched files (not their timestamps) differs from what
/// it last reported. Control loop only.
class FileWatcher {
 public:
  using Clock = std::chrono::steady_clock;

  FileWatcher(uv_loop_t* loop, std::function<void()> onChange,
              std::chrono::milliseconds debounce = std::chrono::milliseconds(100),
              std::chrono::milliseconds poll = std::chrono::seconds(2));
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  /// Watches `patterns` from now on. New patterns take the current content as the baseline
  /// (no callback); the same patterns again keep the baseline, so nothing written since the
  /// last detected change is absorbed unseen.
  void watch(const std::vector<std::string>& patterns);
  /// Takes the current content as the baseline (after a reload made for another reason).
  void rebase();
  /// When the last event was seen (the start of a change), for latency measurements.
  Clock::time_point lastEventAt() const { return lastEvent_; }

 private:
  struct DirWatch;
  static void onFsEvent(uv_fs_event_t* handle, const char* filename, int events, int status);
  static void onTimer(uv_timer_t* timer);
  static void onPoll(uv_timer_t* timer);
  /// A digest of every matched file's path and content.
  std::string fingerprint() const;
  void eventSeen();
  void settle();

  uv_loop_t* loop_;
  std::function<void()> onChange_;
  std::chrono::milliseconds debounce_;
  std::vector<std::string> patterns_;
  std::map<std::string, DirWatch*> dirs_;  // closed and freed asynchronously
  uv_timer_t* debounceTimer_;
  uv_timer_t* pollTimer_;
  std::string baseline_;
  Clock::time_point lastEvent_{};
};

/// Hot reload from files: watches the bootstrap, the extra rule files and the bootstrap's
/// `rules.files` globs (as the running config has them) and reloads when they change.
class RulesWatch : public proxy::ControlPlugin {
 public:
  explicit RulesWatch(std::vector<std::string> fixedPaths) : fixed_(std::move(fixedPaths)) {}

  void start(proxy::Server& server) override;
  void onApplied(const config::Config& config) override;
  void stop() override { watcher_.reset(); }

 private:
  std::vector<std::string> fixed_;
  std::unique_ptr<FileWatcher> watcher_;
};

}  // namespace tether::control
