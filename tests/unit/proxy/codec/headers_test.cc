#include "proxy/codec/headers.h"

#include <catch2/catch.hpp>

using tether::proxy::HeaderMap;
using tether::proxy::stripHopByHop;

TEST_CASE("hop-by-hop fields and the ones Connection names are stripped", "[proxy]") {
  HeaderMap h;
  h.add("connection", "keep-alive, X-Secret");
  h.add("keep-alive", "timeout=5");
  h.add("x-secret", "1");
  h.add("transfer-encoding", "chunked");
  h.add("te", "trailers");
  h.add("upgrade", "websocket");
  h.add("proxy-connection", "keep-alive");
  h.add("content-type", "text/plain");
  h.add("x-keep", "yes");
  stripHopByHop(h);
  REQUIRE(h.size() == 2);
  CHECK(*h.get("content-type") == "text/plain");
  CHECK(*h.get("x-keep") == "yes");
  CHECK(h.get("x-secret") == nullptr);
}

TEST_CASE("HeaderMap set replaces every field of that name", "[proxy]") {
  HeaderMap h;
  h.add("a", "1");
  h.add("b", "2");
  h.add("a", "3");
  h.set("a", "4");
  REQUIRE(h.size() == 2);
  CHECK(*h.get("a") == "4");
  CHECK(h.remove("a") == 1);
  CHECK(h.get("a") == nullptr);
}
