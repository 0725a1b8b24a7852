// Redis replies as the global rate limiter reads them: RESP bytes through hiredis's reader
// with Tether's limits, then Tether's reading of the script's answer.

#include <hiredis/hiredis.h>

#include <cstdint>

#include "filters/rate_limit/rate_limiter.h"
#include "proxy/upstream/redis_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  redisReader* reader = redisReaderCreate();
  if (!reader) return 0;
  tether::proxy::limitRedisReader(reader);  // as the worker's client has it
  if (redisReaderFeed(reader, reinterpret_cast<const char*>(data), size) == REDIS_OK) {
    void* reply = nullptr;
    while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply) {
      tether::filters::RateDecision d;
      (void)tether::filters::RateLimiter::parseGlobalReply(static_cast<redisReply*>(reply), d);
      freeReplyObject(reply);
      reply = nullptr;
    }
  }
  redisReaderFree(reader);
  return 0;
}
