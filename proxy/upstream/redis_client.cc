#include "proxy/upstream/redis_client.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstring>

#include "proxy/common/log.h"

namespace tether::proxy {

namespace {

void connectCb(const redisAsyncContext* c, int status) {
  if (c->data) static_cast<RedisClient*>(c->data)->onConnect(status);
}

void disconnectCb(const redisAsyncContext* c, int status) {
  if (c->data) static_cast<RedisClient*>(c->data)->onDisconnect(status);
}

}  // namespace

RedisClient::RedisClient(uv_loop_s* loop, config::Address address)
    : loop_(loop),
      address_(std::move(address)),
      retry_(loop, [this] { connect(); }),
      connectTimer_(loop, [this] { giveUpConnecting(); }) {
  connect();
}

RedisClient::~RedisClient() {
  retry_.stop();
  connectTimer_.stop();
  // Nobody is left to hear the answers hiredis will now fail.
  for (Call* c : pending_) c->done_ = nullptr;
  if (ctx_) {
    ctx_->data = nullptr;
    redisAsyncFree(ctx_);  // pending callbacks run with a null reply
  }
}

void limitRedisReader(redisReader* reader) {
  // hiredis keeps its default reply functions private: they are read off a reader once.
  static const redisReplyObjectFunctions kDefaults = [] {
    redisReader* r = redisReaderCreate();
    redisReplyObjectFunctions f = *r->fn;
    redisReaderFree(r);
    return f;
  }();
  static redisReplyObjectFunctions limited = [] {
    redisReplyObjectFunctions f = kDefaults;
    f.createArray = [](const redisReadTask* task, int elements) -> void* {
      if (elements > kMaxRedisArray) return nullptr;  // hiredis reports it as an error
      return kDefaults.createArray(task, elements);
    };
    return f;
  }();
  reader->fn = &limited;
}

void RedisClient::connect() {
  ctx_ = redisAsyncConnect(address_.host.c_str(), address_.port);
  if (!ctx_ || ctx_->err) {
    if (ctx_) redisAsyncFree(ctx_);
    ctx_ = nullptr;
    retry_.start(std::chrono::seconds(1));
    return;
  }
  limitRedisReader(ctx_->c.reader);
  ctx_->data = this;
  redisLibuvAttach(ctx_, loop_);
  redisAsyncSetConnectCallback(ctx_, connectCb);
  redisAsyncSetDisconnectCallback(ctx_, disconnectCb);
  // hiredis notices the connect completing only when it has a command to write; and its
  // libuv adapter drops poll errors, so a refused connect is never reported: a timer gives
  // up on it instead.
  redisAsyncCommand(ctx_, nullptr, nullptr, "PING");
  connectTimer_.start(std::chrono::seconds(1));
}

void RedisClient::giveUpConnecting() {
  if (connected_ || !ctx_) return;
  TETHER_LOG(kDebug, "redis: cannot connect to " + address_.toString());
  for (Call* c : pending_) c->done_ = nullptr;
  ctx_->data = nullptr;
  redisAsyncFree(ctx_);
  ctx_ = nullptr;
  retry_.start(std::chrono::seconds(1));
}

void RedisClient::onConnect(int status) {
  connectTimer_.stop();
  if (status != REDIS_OK) {
    TETHER_LOG(kDebug, "redis: cannot connect to " + address_.toString());
    // hiredis frees the context after a failed connect.
    ctx_ = nullptr;
    connected_ = false;
    retry_.start(std::chrono::seconds(1));
    return;
  }
  connectTimer_.stop();
  connected_ = true;
  TETHER_LOG(kInfo, "redis: connected to " + address_.toString());
}

void RedisClient::onDisconnect(int) {
  // hiredis frees the context after this callback.
  if (connected_) TETHER_LOG(kWarn, "redis: lost " + address_.toString() + "; local fallback");
  ctx_ = nullptr;
  connected_ = false;
  retry_.start(std::chrono::seconds(1));
}

void RedisClient::onReply(redisAsyncContext* ctx, void* reply, void* privdata) {
  std::unique_ptr<Call> call(static_cast<Call*>(privdata));
  if (auto* self = static_cast<RedisClient*>(ctx->data)) self->pending_.erase(call.get());
  if (call->done_) call->done_(static_cast<const redisReply*>(reply));
}

RedisClient::Call* RedisClient::eval(const char* script, const std::string& key,
                                     const std::vector<std::string>& args,
                                     std::function<void(const redisReply*)> done) {
  if (!connected_ || !ctx_) return nullptr;
  std::vector<const char*> argv = {"EVAL", script, "1", key.c_str()};
  std::vector<size_t> lens = {4, strlen(script), 1, key.size()};
  for (const auto& a : args) {
    argv.push_back(a.c_str());
    lens.push_back(a.size());
  }
  auto* call = new Call;
  call->done_ = std::move(done);
  if (redisAsyncCommandArgv(ctx_, onReply, call, static_cast<int>(argv.size()), argv.data(),
                            lens.data()) != REDIS_OK) {
    delete call;
    return nullptr;
  }
  pending_.insert(call);
  return call;
}

}  // namespace tether::proxy
