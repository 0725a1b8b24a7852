#include "control/file_watcher.h"

#include "config/config.h"

namespace tether::control {

struct FileWatcher::DirWatch {
  uv_fs_event_t handle;
  FileWatcher* owner;
};

namespace {

std::string dirOf(const std::string& pattern) {
  size_t slash = pattern.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : pattern.substr(0, slash);
}

bool hasGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

template <typename Handle>
void closeAndDelete(Handle* h) {
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* x) { delete reinterpret_cast<Handle*>(x); });
}

}  // namespace

FileWatcher::FileWatcher(uv_loop_t* loop, std::function<void()> onChange,
                         std::chrono::milliseconds debounce, std::chrono::milliseconds poll)
    : loop_(loop),
      onChange_(std::move(onChange)),
      debounce_(debounce),
      debounceTimer_(new uv_timer_t),
      pollTimer_(new uv_timer_t) {
  uv_timer_init(loop_, debounceTimer_);
  debounceTimer_->data = this;
  uv_timer_init(loop_, pollTimer_);
  pollTimer_->data = this;
  uv_timer_start(pollTimer_, &FileWatcher::onPoll, static_cast<uint64_t>(poll.count()),
                 static_cast<uint64_t>(poll.count()));
}

FileWatcher::~FileWatcher() {
  for (auto& [dir, w] : dirs_) {
    uv_fs_event_stop(&w->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
             [](uv_handle_t* h) { delete static_cast<DirWatch*>(h->data); });
  }
  closeAndDelete(debounceTimer_);
  closeAndDelete(pollTimer_);
}

void FileWatcher::watch(const std::vector<std::string>& patterns) {
  // Called after every applied reload. The baseline stays what the last change was
  // detected against: taking it again here would absorb a write made while that reload
  // was loading, and the write would never be applied. (A reload that already read the
  // newer content costs one more reload, which finds nothing changed.)
  bool samePatterns = patterns == patterns_ && !baseline_.empty();
  patterns_ = patterns;
  std::map<std::string, bool> wanted;
  for (const auto& p : patterns_) {
    std::string dir = dirOf(p);
    if (!hasGlob(dir)) wanted[dir] = true;  // a glob in the directory part: the poll covers it
  }
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    DirWatch* w = it->second;
    uv_fs_event_stop(&w->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
             [](uv_handle_t* h) { delete static_cast<DirWatch*>(h->data); });
    it = dirs_.erase(it);
  }
  for (const auto& [dir, unused] : wanted) {
    if (dirs_.count(dir)) continue;
    auto* w = new DirWatch{};
    w->owner = this;
    uv_fs_event_init(loop_, &w->handle);
    w->handle.data = w;
    if (uv_fs_event_start(&w->handle, &FileWatcher::onFsEvent, dir.c_str(), 0) != 0) {
      // Not there (yet): the poll notices when it appears.
      uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
               [](uv_handle_t* h) { delete static_cast<DirWatch*>(h->data); });
      continue;
    }
    dirs_[dir] = w;
  }
  if (!samePatterns) rebase();
}

void FileWatcher::rebase() { baseline_ = fingerprint(); }

std::string FileWatcher::fingerprint() const {
  std::string all;
  for (const auto& pattern : patterns_) {
    for (const auto& path : config::expandGlob(pattern)) {
      std::string content;
      bool readable = config::readFile(path, content);
      all += path;
      all += readable ? '\1' : '\2';
      all += config::sha256Hex(content);
      all += '\0';
    }
  }
  return config::sha256Hex(all);
}

void FileWatcher::onFsEvent(uv_fs_event_t* handle, const char*, int, int status) {
  if (status != 0) return;
  static_cast<DirWatch*>(handle->data)->owner->eventSeen();
}

void FileWatcher::eventSeen() {
  // Armed by the first event of a burst and not restarted by the rest: the writes of one
  // save settle into one reload, and a steady stream of writes is still applied every
  // `debounce` instead of never.
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(debounceTimer_))) return;
  lastEvent_ = Clock::now();
  uv_timer_start(debounceTimer_, &FileWatcher::onTimer, static_cast<uint64_t>(debounce_.count()),
                 0);
}

void FileWatcher::onTimer(uv_timer_t* timer) { static_cast<FileWatcher*>(timer->data)->settle(); }

void FileWatcher::onPoll(uv_timer_t* timer) {
  auto* self = static_cast<FileWatcher*>(timer->data);
  if (self->fingerprint() != self->baseline_) {
    self->lastEvent_ = Clock::now();
    self->settle();
  }
}

void FileWatcher::settle() {
  std::string now = fingerprint();
  if (now == baseline_) return;
  baseline_ = now;
  onChange_();
}

void RulesWatch::start(proxy::Server& server) {
  watcher_ =
      std::make_unique<FileWatcher>(server.loop(), [&server] { server.reload("file change"); });
}

void RulesWatch::onApplied(const config::Config& config) {
  if (!watcher_) return;
  if (!config.bootstrap.rules.watch) {
    watcher_->watch({});
    return;
  }
  std::vector<std::string> patterns = fixed_;
  for (const auto& p : config.bootstrap.rules.files) patterns.push_back(p);
  watcher_->watch(patterns);
}

}  // namespace tether::control
