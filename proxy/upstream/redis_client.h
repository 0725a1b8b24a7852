#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/address.h"
#include "proxy/common/timer.h"

struct redisAsyncContext;
struct redisReply;
struct redisReader;

namespace tether::proxy {

/// The most elements a Redis reply array may announce. hiredis 0.14 allocates whatever
/// count a reply's header states ("*100000000" is 800 MB, freed element by element), so
/// every reader Tether uses refuses bigger arrays: the reply is an error, the connection is
/// dropped and the local fallback decides until it is back. Tether's scripts answer 4.
inline constexpr int kMaxRedisArray = 1024;
/// Applies kMaxRedisArray to `reader` (its other reply functions stay hiredis's own).
void limitRedisReader(redisReader* reader);

/// One worker's connection to Redis, for global rate limits: hiredis's async API on the
/// worker's own libuv loop (redisLibuvAttach), so a request never blocks the worker. A lost
/// connection is retried every second; meanwhile callers are told Redis is down and use
/// their local fallback.
class RedisClient {
 public:
  /// A command in flight. cancel() makes its reply go nowhere (the caller gave up).
  class Call {
   public:
    void cancel() { done_ = nullptr; }

   private:
    friend class RedisClient;
    std::function<void(const redisReply*)> done_;
  };

  RedisClient(uv_loop_s* loop, config::Address address);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  bool connected() const { return connected_; }
  /// EVAL `script` with one key and `args`. nullptr when Redis is down (waiting to retry;
  /// the callback is not called). `done` gets nullptr when the connection fails meanwhile.
  Call* eval(const char* script, const std::string& key, const std::vector<std::string>& args,
             std::function<void(const redisReply*)> done);

  // hiredis callbacks.
  void onConnect(int status);
  void onDisconnect(int status);
  static void onReply(redisAsyncContext* c, void* reply, void* privdata);

 private:
  void connect();
  void giveUpConnecting();

  uv_loop_s* loop_;
  config::Address address_;
  redisAsyncContext* ctx_ = nullptr;
  Timer retry_;
  Timer connectTimer_;
  std::unordered_set<Call*> pending_;  // silenced when the client goes
  bool connected_ = false;
};

}  // namespace tether::proxy
