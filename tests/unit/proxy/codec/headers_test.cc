#include "proxy/codec/headers.h"

#include <catch2/catch.hpp>

using tether::proxy::HeaderMap;
using tether::proxy::stripHopByHop;
using tether::proxy::validAuthority;

TEST_CASE("Host and :authority values: reg-names, IP literals, ports; nothing else", "[proxy]") {
  for (const char* ok : {"svc", "svc:8080", "Svc.NS.svc.cluster.local", "10.0.0.1:80", "[::1]:443",
                         "[2001:db8::1]", "a_b-c~d", "x%41y", "svc:"}) {
    INFO(ok);
    CHECK(validAuthority(ok, false));
  }
  // Found by the differential fuzz target: Tether forwarded these as Host.
  for (const char* bad : {"/ws http/1.1", "a b", "user@svc", "svc:80x", "[::1", "[]", ":80",
                          "svc/evil", "x%4", "svc\\a", "{}", "a\tb"}) {
    INFO(bad);
    CHECK_FALSE(validAuthority(bad, false));
  }
  CHECK(validAuthority("svc:443", true));
  CHECK_FALSE(validAuthority("svc", true));
  CHECK_FALSE(validAuthority("svc:", true));
}

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
