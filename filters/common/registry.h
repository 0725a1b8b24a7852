#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tether::filters {

/// Live state objects by key, held weakly: an object lives as long as some snapshot uses
/// it, and a snapshot built while it lives gets the same one (so state survives a reload
/// that keeps the rule). Lookups happen when snapshots are built, on the control thread;
/// the mutex is there for scrapes (live()), never per request.
template <class T>
class Registry {
 public:
  /// The live object for `key`, or a new one from `make()`.
  template <class Make>
  std::shared_ptr<T> get(const std::string& key, Make make) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto existing = items_[key].lock()) return existing;
    std::shared_ptr<T> made = make();
    items_[key] = made;
    return made;
  }

  /// Every object still alive (dead entries are dropped on the way).
  std::vector<std::shared_ptr<T>> live() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<T>> out;
    for (auto it = items_.begin(); it != items_.end();) {
      if (auto p = it->second.lock()) {
        out.push_back(std::move(p));
        ++it;
      } else {
        it = items_.erase(it);
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<T>> items_;
};

}  // namespace tether::filters
