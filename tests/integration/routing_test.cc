// Route matching on hostile input: regexes that must run in linear time on any request, and
// path spellings that must route (and be limited) as the path they spell.

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string regexRoutes(uint16_t port) {
  return "rules:\n  inline:\n" +
         doc("Service", "up",
             "{ endpoints: [ { address: 127.0.0.1:" + std::to_string(port) + " } ] }") +
         doc("Route", "up",
             "{ hosts: [ up ], rules: [ "
             "{ match: { pathRegex: \"/(a*)*b\" }, backends: [ { service: up } ] }, "
             "{ match: { headers: { x-id: { regex: \"[0-9a-f]+(-[0-9a-f]+)*\" } } }, "
             "backends: [ { service: up } ] }, "
             "{ match: { pathRegex: \"/api/.*\" }, backends: [ { service: up } ] } ] }");
}

}  // namespace

TEST_CASE("route regexes run in linear time: long paths and headers, pathological patterns",
          "[routing][regex]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()) + regexRoutes(app.port()));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  // std::regex recursed once per character here: a 35,000-byte path overflowed the stack.
  HttpResponse r = httpRequest(port, "GET", "/api/" + std::string(35000, 'x'), "up");
  CHECK(r.status == 200);
  // And a 40,000-byte header value against a header regex.
  std::string id = "ab12";
  while (id.size() < 40000) id += "-ab12";
  r = httpRequest(port, "GET", "/other", "up", "", {{"x-id", id}});
  CHECK(r.status == 200);
  // /(a*)*b backtracked exponentially: 26 s at 18 bytes, never at 20. Four at once used to
  // stall the worker; now each is answered at once, and so is a request beside them.
  auto start = std::chrono::steady_clock::now();
  std::vector<std::future<HttpResponse>> hostile;
  for (size_t n : {18, 20, 30, 4000}) {
    hostile.push_back(std::async(std::launch::async, [port, n] {
      return httpRequest(port, "GET", "/" + std::string(n, 'a'), "up");
    }));
  }
  CHECK(httpRequest(port, "GET", "/api/x", "up").status == 200);
  for (auto& f : hostile) CHECK(f.get().status == 404);  // no b: no rule matches
  CHECK(httpRequest(port, "GET", "/" + std::string(30, 'a') + "b", "up").status == 200);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(t.running());
}

TEST_CASE("a regex RE2 cannot run is refused at its position, and the old rules keep serving",
          "[routing][regex]") {
  FakeUpstream app;
  std::string rules = writeFile("regex-rules.yaml",
                                "apiVersion: tether.dev/v1alpha1\nkind: Service\n"
                                "metadata: { name: up }\nspec: { endpoints: [ { address: "
                                "127.0.0.1:" +
                                    std::to_string(app.port()) +
                                    " } ] }\n---\napiVersion: tether.dev/v1alpha1\nkind: Route\n"
                                    "metadata: { name: up }\nspec:\n  hosts: [ up ]\n  rules:\n"
                                    "    - match: { pathRegex: \"(x+)\\\\1\" }\n"
                                    "      backends: [ { service: up } ]\n");
  std::string out;
  std::string boot = writeFile("regex-boot.yaml", basicBootstrap(app.port()));
  CHECK(runCommand(std::string(TETHER_BIN) + " validate -c " + boot + " " + rules, &out, true) !=
        0);
  INFO(out);
  CHECK(out.find("regex-rules.yaml:12:27: spec.rules[0].match.pathRegex: invalid regex") !=
        std::string::npos);
}

TEST_CASE("path spellings route and are limited as the path they spell", "[routing][path]") {
  FakeUpstream app;
  TetherProcess t(
      basicBootstrap(app.port()) + "rules:\n  inline:\n" +
      doc("Service", "up",
          "{ endpoints: [ { address: 127.0.0.1:" + std::to_string(app.port()) + " } ] }") +
      doc("Route", "up",
          "{ hosts: [ up ], rules: [ { match: { pathPrefix: /api }, backends: [ { service: up "
          "} ] } ] }") +
      doc("RateLimit", "api",
          "{ target: { direction: inbound, pathPrefix: /api }, limit: 2, per: 60s, burst: 2 }"));
  REQUIRE(t.started());
  // Routing (outbound): each spelling of /api/x reaches the route for /api, forwarded as
  // /api/x; a spelling of another path does not.
  for (const char* target : {"//api/x", "/./api/x", "/%61pi/x", "/x/../api/x", "/api/./x"}) {
    INFO(target);
    CHECK(httpRequest(t.port("outbound"), "GET", target, "up").status == 200);
    CHECK(app.lastRequest().target == "/api/x");
  }
  HttpResponse r = httpRequest(t.port("outbound"), "GET", "/api/../other", "up");
  CHECK(r.status == 404);
  // Rate limits (inbound): two pass, then every spelling is limited.
  CHECK(httpRequest(t.port("inbound"), "GET", "/api/x").status == 200);
  CHECK(httpRequest(t.port("inbound"), "GET", "/api/y").status == 200);
  for (const char* target : {"//api/x", "/./api/x", "/%61pi/x", "/x/../api/x", "/api/x"}) {
    INFO(target);
    CHECK(httpRequest(t.port("inbound"), "GET", target).status == 429);
  }
  // HTTP/2 requests are normalized the same way.
  std::string out = curl(
      "--http2-prior-knowledge --path-as-is -o /dev/null -w '%{http_code}' "
      "http://127.0.0.1:" +
      std::to_string(t.port("inbound")) + "//api/../api/z");
  CHECK(out == "429");
  CHECK(httpRequest(t.port("inbound"), "GET", "/other").status == 200);
}
