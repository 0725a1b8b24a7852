#include <catch2/catch.hpp>
#include <fstream>

#include "config/config.h"

using namespace tether::config;

namespace {

LoadResult loadRules(const std::string& rules, const std::string& bootstrap = "") {
  return loadFromSources(Source{"boot.yaml", bootstrap}, {Source{"rules.yaml", rules}}, false);
}

std::vector<std::string> messages(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.format());
  return out;
}

/// The ```yaml blocks of a Markdown file, in order.
std::vector<std::string> yamlBlocks(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> blocks;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```yaml") {
      inside = true;
      blocks.emplace_back();
    } else if (inside && line == "```") {
      inside = false;
    } else if (inside) {
      blocks.back() += line + "\n";
    }
  }
  return blocks;
}

}  // namespace

TEST_CASE("docs/design.md: its bootstrap and every rule example load as written", "[config]") {
  std::vector<std::string> blocks = yamlBlocks(TETHER_SOURCE_DIR "/docs/design.md");
  REQUIRE(blocks.size() == 2);
  LoadResult r = loadFromSources(Source{"design.md bootstrap", blocks[0]},
                                 {Source{"design.md rules", blocks[1]}}, false);
  INFO(Catch::Detail::stringify(messages(r)));
  REQUIRE(r.config);
  std::vector<std::string> kinds;
  for (const auto& d : r.config->documents) kinds.push_back(d.kind + " " + d.name);
  CHECK(kinds == std::vector<std::string>{"Service ratings", "Route ratings",
                                          "TrafficLabel beta-users", "RateLimit ratings-qps",
                                          "CircuitBreaker ratings-cb", "HmacAuth callers"});
  CHECK(r.config->bootstrap.node.name == "reviews-7f9c");
}

TEST_CASE("the docs/design.md bootstrap and Service/Route examples load verbatim", "[config]") {
  LoadResult r = loadFromFiles(TETHER_FIXTURES_DIR "/design_bootstrap.yaml",
                               {TETHER_FIXTURES_DIR "/design_example.yaml"});
  INFO(Catch::Detail::stringify(messages(r)));
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.bootstrap.node.name == "reviews-7f9c");
  CHECK(c.bootstrap.node.labels.at("version") == "v2");
  CHECK(c.bootstrap.workers == 0);
  REQUIRE(c.bootstrap.listeners.size() == 2);
  CHECK(c.bootstrap.listeners[0].originalDestination);
  CHECK(c.bootstrap.listeners[1].direction == Direction::kInbound);
  CHECK(c.bootstrap.localApp.readinessPath == std::string("/healthz"));
  CHECK(c.bootstrap.rules.controlPlane->address.port == 15010);
  CHECK(c.bootstrap.drainTimeout == std::chrono::seconds(20));
  const ServiceConfig* s = c.findService("ratings");
  REQUIRE(s);
  CHECK(s->endpoints.size() == 2);
  CHECK(s->endpoints[1].weight == 2);
  CHECK(s->loadBalancer.policy == LbPolicy::kLeastRequest);
  CHECK(s->outlierDetection->maxEjectionPercent == 50);
  REQUIRE(c.routes.size() == 1);
  const RouteConfig& route = c.routes[0];
  CHECK(route.hosts == std::vector<std::string>{"ratings", "ratings:9080"});
  REQUIRE(route.rules.size() == 2);
  CHECK(route.rules[0].match.headers[0].first == "x-canary");
  CHECK(route.rules[1].totalWeight == 100);
  CHECK(route.rules[1].timeout == std::chrono::seconds(1));
  CHECK(route.rules[1].retry->perTryTimeout == std::chrono::milliseconds(300));
  CHECK(route.rules[1].onFailure == FailureMode::kFailover);
  CHECK(route.rules[1].failsafe->body == "{}");
  CHECK(c.documents.size() == 2);
}

TEST_CASE("every error is reported with file, line, column, path and a hint", "[config]") {
  LoadResult r = loadFromFiles(TETHER_FIXTURES_DIR "/design_bootstrap.yaml",
                               {TETHER_FIXTURES_DIR "/bad_rules.yaml"});
  CHECK_FALSE(r.config);
  std::string f = TETHER_FIXTURES_DIR "/bad_rules.yaml";
  CHECK(messages(r) ==
        std::vector<std::string>{
            f + ":6:34: spec.endpoints[0]: unknown key \"wieght\" (did you mean \"weight\"?)",
            f + ":16:16: spec.rules[0].timeout: invalid duration \"soon\" (use e.g. 300ms, 10s, "
                "1m)",
            f + ":15:30: spec.rules[0].backends[0].service: unknown service \"ratngs\" (did you "
                "mean \"ratings\"?)"});
}

TEST_CASE("unknown kinds are errors naming the kind", "[config]") {
  LoadResult r = loadRules(
      "apiVersion: tether.dev/v1alpha1\nkind: Servise\nmetadata: {name: x}\nspec: {}\n---\n"
      "apiVersion: tether.dev/v1alpha1\nkind: Gateway\nmetadata: {name: y}\nspec: {a: 1}\n");
  CHECK(messages(r) ==
        std::vector<std::string>{
            "rules.yaml:2:7: kind: unknown kind \"Servise\" (did you mean "
            "\"Service\"?)",
            "rules.yaml:7:7: kind: unknown kind \"Gateway\" (supported: Service, "
            "Route, TrafficLabel, RateLimit, CircuitBreaker, ConcurrencyLimit, HmacAuth)"});
}

TEST_CASE("YAML syntax errors carry their position", "[config]") {
  LoadResult r = loadRules("apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: x\n");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].file == "rules.yaml");
  CHECK(r.errors[0].line >= 3);
  CHECK_FALSE(r.config);
}

TEST_CASE("a control character is refused at its position, before yaml-cpp sees it", "[config]") {
  // Found by the config fuzz target: a few NUL bytes sent yaml-cpp through millions of
  // empty events (0.4 s of CPU for 158 bytes) before the node bound stopped it.
  LoadResult r = loadRules(std::string("apiVersion: tether.dev/v1alpha1\nkind: Ser\0vice\n", 43));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].column == 10);
  CHECK(r.errors[0].message == "control character 0x00 is not allowed in YAML");
  CHECK_FALSE(r.config);
  // Tabs, CRs and LFs are YAML's own.
  CHECK(loadRules("apiVersion: tether.dev/v1alpha1\r\nkind: Service\r\nmetadata: { name: x }\r\n"
                  "spec:\t{ endpoints: [ { address: 127.0.0.1:1 } ] }\r\n")
            .errors.empty());
}

TEST_CASE("bootstrap keys are checked too", "[config]") {
  LoadResult r = loadRules("", "admin: { adress: 127.0.0.1:1 }\nworkers: lots\n");
  CHECK(messages(r) ==
        std::vector<std::string>{"boot.yaml:1:10: admin: unknown key \"adress\" (did you mean "
                                 "\"address\"?)",
                                 "boot.yaml:2:10: workers: expected an integer from 1 to 256"});
}

TEST_CASE("route checks: weights, regexes, duplicate names, missing fields", "[config]") {
  std::string svc =
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n---\n";
  LoadResult r = loadRules(svc +
                           "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
                           "spec:\n  hosts: [a]\n  rules:\n"
                           "    - match: {pathRegex: \"([\"}\n"
                           "      backends: [{service: a, weight: 0}]\n"
                           "---\n"
                           "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
                           "spec: {hosts: [b]}\n");
  auto m = messages(r);
  REQUIRE(m.size() == 4);
  INFO(m[0]);
  CHECK(m[0].rfind("rules.yaml:12:26: spec.rules[0].match.pathRegex: invalid regex \"([\"", 0) ==
        0);
  CHECK(m[1] == "rules.yaml:13:17: spec.rules[0].backends: weights sum to zero");
  CHECK(m[2] == "rules.yaml:18:7: spec.rules: expected a non-empty list of rules");
  CHECK(m[3] == "rules.yaml:15:1: metadata.name: duplicate Route \"r\"");
}

TEST_CASE("regexes are RE2: what RE2 cannot run in linear time is refused at its position",
          "[config]") {
  std::string head =
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n---\n"
      "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
      "spec:\n  hosts: [a]\n  rules:\n";
  auto routeWith = [&](const std::string& match) {
    return loadRules(head + "    - match: " + match + "\n      backends: [{service: a}]\n");
  };
  // Backreferences and lookaheads need backtracking: RE2 has neither.
  auto m = messages(routeWith("{pathRegex: \"(a)\\\\1\"}"));
  REQUIRE(m.size() == 1);
  CHECK(m[0].rfind("rules.yaml:12:26: spec.rules[0].match.pathRegex: invalid regex", 0) == 0);
  CHECK(m[0].find("RE2") != std::string::npos);
  m = messages(routeWith("{headers: {x-a: {regex: \"a(?=b)\"}}}"));
  REQUIRE(m.size() == 1);
  INFO(m[0]);
  CHECK(m[0].rfind("rules.yaml:12:38: spec.rules[0].match.headers.x-a.regex: invalid regex", 0) ==
        0);
  // A pattern whose program is too large (a counted repetition unrolls).
  m = messages(routeWith("{pathRegex: \"(abcdefgh){1000}\"}"));
  REQUIRE(m.size() == 1);
  CHECK(m[0].find("program size") != std::string::npos);
  // What used to take exponential time compiles and matches in linear time.
  LoadResult ok = routeWith("{pathRegex: \"(a*)*b\"}");
  REQUIRE(ok.errors.empty());
  const auto& rx = ok.config->routes.at(0).rules.at(0).match.pathRegex;
  REQUIRE(rx);
  CHECK_FALSE(rx->fullMatch(std::string(100000, 'a')));
  CHECK(rx->fullMatch(std::string(100000, 'a') + "b"));
}

TEST_CASE("the embedded default is docs/design.md's", "[config]") {
  LoadResult r = loadEmbeddedDefault();
  REQUIRE(r.config);
  const Bootstrap& b = r.config->bootstrap;
  CHECK(b.admin.toString() == "127.0.0.1:15000");
  REQUIRE(b.listeners.size() == 2);
  CHECK(b.listeners[0].address.toString() == "127.0.0.1:15001");
  CHECK(b.listeners[1].address.toString() == "0.0.0.0:15006");
  CHECK(b.localApp.address.toString() == "127.0.0.1:8080");
  CHECK(r.config->findService(kLocalAppService) != nullptr);
}

TEST_CASE("identical content hashes identically, any change changes the hash", "[config]") {
  std::string doc =
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n";
  LoadResult a = loadRules(doc), b = loadRules(doc);
  std::string other = doc;
  other.replace(other.find("name: a"), 7, "name: b");
  LoadResult c = loadRules(doc + "---\n" + other);
  REQUIRE(a.config);
  REQUIRE(c.config);
  CHECK(a.config->hash == b.config->hash);
  CHECK(a.config->hash != c.config->hash);
}

TEST_CASE("fault injection and TrafficLabel documents load, with checked ranges", "[config]") {
  std::string svc =
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n---\n";
  LoadResult ok = loadRules(
      svc +
      "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
      "spec:\n  hosts: [a]\n  rules:\n    - backends: [{service: a}]\n"
      "      fault: { delay: {fixed: 200ms, percent: 10}, abort: {status: 503, percent: 5} }\n");
  REQUIRE(ok.config);
  const auto& f = *ok.config->routes[0].rules[0].fault;
  CHECK(f.delay == std::chrono::milliseconds(200));
  CHECK(f.delayPercent == 10);
  CHECK(f.abortStatus == 503);
  CHECK(f.abortPercent == 5);
  LoadResult bad =
      loadRules(svc +
                "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
                "spec:\n  hosts: [a]\n  rules:\n    - backends: [{service: a}]\n"
                "      fault: { abort: {status: 503, percent: 150} }\n---\n"
                "apiVersion: tether.dev/v1alpha1\nkind: TrafficLabel\nmetadata: {name: t}\n"
                "spec: { label: \"no spaces\" }\n");
  CHECK(messages(bad) ==
        std::vector<std::string>{
            "rules.yaml:13:46: spec.rules[0].fault.abort.percent: expected a number from 0 to "
            "100",
            "rules.yaml:18:16: spec.label: a label is 1-63 of [A-Za-z0-9._-]",
            "rules.yaml:18:7: spec.match: a TrafficLabel needs a match, a percentage, or both"});
}

TEST_CASE("the docs/design.md RateLimit and CircuitBreaker examples load verbatim", "[config]") {
  LoadResult r = loadFromFiles(TETHER_FIXTURES_DIR "/design_bootstrap.yaml",
                               {TETHER_FIXTURES_DIR "/design_resilience.yaml"});
  INFO(Catch::Detail::stringify(messages(r)));
  REQUIRE(r.config);
  REQUIRE(r.config->rateLimits.size() == 1);
  const RateLimitConfig& rl = r.config->rateLimits[0];
  CHECK(rl.name == "ratings-qps");
  CHECK(rl.target.direction == Direction::kInbound);
  CHECK(rl.target.pathPrefix == "/api");
  CHECK(rl.algorithm == RateLimitAlgorithm::kTokenBucket);
  CHECK(rl.limit == 100);
  CHECK(rl.burst == 20);
  CHECK(rl.key.kind == RateLimitKey::Kind::kCaller);
  CHECK(rl.maxQueueTime == std::chrono::milliseconds(500));
  CHECK(rl.fallback.status == 429);
  CHECK(rl.fallback.headers.at("x-tether-limit") == "ratings-qps");
  REQUIRE(r.config->circuitBreakers.size() == 1);
  const CircuitBreakerConfig& cb = r.config->circuitBreakers[0];
  CHECK(cb.target.service == "ratings");
  CHECK(cb.strategy == BreakerStrategy::kErrorRatio);
  CHECK(cb.threshold == 0.5);
  CHECK(cb.slowCallThreshold == std::chrono::milliseconds(200));
  CHECK(cb.minRequests == 20);
  CHECK(cb.halfOpenProbes == 3);
  CHECK(cb.recoveryStep == Approx(0.1));
  CHECK(cb.recoveryInterval == std::chrono::seconds(10));
  CHECK(cb.fallback.body == "ratings degraded");
}

TEST_CASE("OpenSergo fault-tolerance documents load as-is and map onto native rules",
          "[config][opensergo]") {
  std::ifstream in(TETHER_FIXTURES_DIR "/opensergo.yaml");
  std::string rules((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LoadResult r = loadRules(rules, "node: { service: foo-app }\n");
  INFO(Catch::Detail::stringify(messages(r)));
  REQUIRE(r.config);
  const Config& c = *r.config;
  REQUIRE(c.rateLimits.size() == 2);
  const RateLimitConfig& foo = c.rateLimits[0];
  CHECK(foo.name == "my-rule/rate-limit-foo");
  CHECK(foo.target.direction == Direction::kInbound);  // foo-app is this sidecar's app
  CHECK(foo.target.pathPrefix == "/foo");
  CHECK(foo.algorithm == RateLimitAlgorithm::kSlidingWindow);
  CHECK(foo.limit == 10);
  CHECK(foo.per == std::chrono::seconds(1));
  CHECK(foo.fallback.status == 429);
  CHECK(foo.fallback.body == "Blocked by Sentinel");
  CHECK(foo.fallback.headers.at("X-Sentinel-Limit") == "foo");
  const RateLimitConfig& throttle = c.rateLimits[1];
  CHECK(throttle.target.direction == Direction::kOutbound);
  CHECK(throttle.target.service == "bar");
  CHECK(throttle.algorithm == RateLimitAlgorithm::kLeakyBucket);
  CHECK(throttle.per == std::chrono::milliseconds(20));
  CHECK(throttle.maxQueueTime == std::chrono::milliseconds(500));
  REQUIRE(c.concurrencyLimits.size() == 1);
  CHECK(c.concurrencyLimits[0].maxConcurrency == 8);
  REQUIRE(c.circuitBreakers.size() == 1);
  const CircuitBreakerConfig& cb = c.circuitBreakers[0];
  CHECK(cb.strategy == BreakerStrategy::kSlowRatio);
  CHECK(cb.threshold == Approx(0.6));
  CHECK(cb.window == std::chrono::seconds(30));
  CHECK(cb.openDuration == std::chrono::seconds(5));
  CHECK(cb.minRequests == 5);
  CHECK(cb.slowCallThreshold == std::chrono::milliseconds(500));
}

TEST_CASE("unsupported OpenSergo settings are errors, not silence", "[config][opensergo]") {
  LoadResult r = loadRules(
      "apiVersion: fault-tolerance.opensergo.io/v1alpha1\nkind: RateLimitStrategy\n"
      "metadata: { name: g }\nspec: { metricType: RequestAmount, limitMode: Global, "
      "threshold: 10, statDuration: 1s }\n---\n"
      "apiVersion: fault-tolerance.opensergo.io/v1alpha1\nkind: FaultToleranceRule\n"
      "metadata: { name: r }\nspec: { targets: [ { targetResourceName: com.foo.Bar } ], "
      "strategies: [ { name: missing } ] }\n");
  std::vector<std::string> m = messages(r);
  INFO(Catch::Detail::stringify(m));
  REQUIRE(m.size() == 2);
  CHECK(m[0].find("\"com.foo.Bar\" is not an HTTP path") != std::string::npos);
  CHECK(m[1].find("unknown strategy \"missing\"") != std::string::npos);
  // limitMode: Global is a global limit, which needs to know where Redis is.
  LoadResult g = loadRules(
      "apiVersion: fault-tolerance.opensergo.io/v1alpha1\nkind: RateLimitStrategy\n"
      "metadata: { name: g }\nspec: { limitMode: Global, threshold: 10 }\n---\n"
      "apiVersion: fault-tolerance.opensergo.io/v1alpha1\nkind: FaultToleranceRule\n"
      "metadata: { name: r }\nspec: { strategies: [ g ] }\n");
  REQUIRE(messages(g).size() == 1);
  CHECK(messages(g)[0].find("mode: global needs redis.address") != std::string::npos);
  LoadResult ok = loadRules(
      "apiVersion: fault-tolerance.opensergo.io/v1alpha1\nkind: RateLimitStrategy\n"
      "metadata: { name: g }\nspec: { limitMode: Global, threshold: 10 }\n---\n"
      "apiVersion: fault-tolerance.opensergo.io/v1alpha1\nkind: FaultToleranceRule\n"
      "metadata: { name: r }\nspec: { strategies: [ g ] }\n",
      "redis: { address: 127.0.0.1:6379 }\n");
  REQUIRE(ok.config);
  CHECK(ok.config->rateLimits[0].global);
  CHECK(ok.config->rateLimits[0].algorithm == RateLimitAlgorithm::kFixedWindow);
}

TEST_CASE("the docs/design.md HmacAuth example loads verbatim", "[config]") {
  LoadResult r = loadFromFiles(TETHER_FIXTURES_DIR "/design_bootstrap.yaml",
                               {TETHER_FIXTURES_DIR "/design_auth.yaml"});
  INFO(Catch::Detail::stringify(messages(r)));
  REQUIRE(r.config);
  REQUIRE(r.config->hmacAuths.size() == 1);
  const HmacAuthConfig& h = r.config->hmacAuths[0];
  CHECK(h.name == "callers");
  CHECK(h.direction == Direction::kInbound);
  REQUIRE(h.keys.size() == 1);
  CHECK(h.keys[0].id == "orders-2026");
  CHECK(h.keys[0].caller == "orders");
  CHECK(h.keys[0].secretFile == "/etc/tether/keys/orders");
  CHECK(h.clockSkew == std::chrono::seconds(300));
  CHECK(h.signedHeaders == std::vector<std::string>{"host", "content-type"});
  REQUIRE(h.allow.size() == 1);
  CHECK(h.allow[0].caller == "orders");
  CHECK(h.allow[0].pathPrefix == "/api");
}

TEST_CASE("HmacAuth errors name the field", "[config]") {
  LoadResult r = loadRules(
      "apiVersion: tether.dev/v1alpha1\nkind: HmacAuth\nmetadata: { name: a }\n"
      "spec:\n  keys: [ { id: \"k 1\", secretFile: /k } ]\n  clockSkew: 0s\n"
      "  keyId: other\n");
  CHECK(messages(r) ==
        std::vector<std::string>{
            "rules.yaml:5:17: spec.keys[0].id: must be non-empty, without spaces, commas, '=' or "
            "quotes",
            "rules.yaml:5:11: spec.keys[0].caller: is required",
            "rules.yaml:7:10: spec.keyId: no key with id \"other\" in keys",
            "rules.yaml:6:14: spec.clockSkew: must be at least 1s"});
}

TEST_CASE("interception settings: unknownDestinations, runAs, Service addresses", "[config]") {
  LoadResult ok = loadRules(
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: s }\n"
      "spec: { addresses: [ \"10.96.0.7:80\" ], endpoints: [ { address: 10.1.0.5:8080 } ] }\n",
      "runAs: { uid: 1337 }\nlisteners:\n"
      "  - { name: o, address: 127.0.0.1:15001, originalDestination: true,"
      " unknownDestinations: deny }\n");
  REQUIRE(ok.config);
  CHECK(ok.config->bootstrap.runAs->uid == 1337);
  CHECK(ok.config->bootstrap.runAs->gid == 1337);  // the uid's number unless given
  CHECK(ok.config->bootstrap.listeners[0].unknownDestinations == ListenerConfig::Unknown::kDeny);
  REQUIRE(ok.config->services.at("s").addresses.size() == 1);
  CHECK(ok.config->services.at("s").addresses[0].toString() == "10.96.0.7:80");

  LoadResult bad = loadRules(
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: s }\n"
      "spec: { addresses: [ vip ] }\n",
      "runAs: { gid: 5 }\nlisteners:\n"
      "  - { name: o, address: 127.0.0.1:15001, unknownDestinations: drop }\n");
  CHECK(messages(bad) ==
        std::vector<std::string>{
            "boot.yaml:1:8: runAs.uid: is required",
            "boot.yaml:3:63: listeners[0].unknownDestinations: invalid value \"drop\" (expected "
            "passthrough | deny)",
            "rules.yaml:4:20: spec.addresses: invalid address \"vip\" (expected ip:port)"});
}

TEST_CASE("duplicate keys are refused at the second, with the path that holds them",
          "[config][yaml]") {
  auto m = messages(
      loadRules("apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
                "spec:\n  hosts: [a]\n  rules:\n    - backends: [{service: a}]\n"
                "    - match: {pathPrefix: /x, pathPrefix: /y}\n      backends: [{service: a}]\n"));
  REQUIRE(m.size() == 1);
  CHECK(m[0] ==
        "rules.yaml:8:31: spec.rules[1].match.pathPrefix: duplicate key \"pathPrefix\" (first at "
        "line 8, column 15)");
  // The same key in different maps, or in the next document, is not a duplicate.
  LoadResult ok = loadRules(
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}, {address: 127.0.0.1:2}]}\n---\n"
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: b}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n");
  CHECK(ok.errors.empty());
}

TEST_CASE("aliases are counted as what they expand to", "[config][yaml]") {
  // A few aliases (rules sharing a backend list) are fine.
  LoadResult ok = loadRules(
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n---\n"
      "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: r}\n"
      "spec:\n  hosts: [a]\n  rules:\n"
      "    - match: {pathPrefix: /x}\n      backends: &b [{service: a}]\n"
      "    - backends: *b\n");
  INFO((messages(ok).empty() ? std::string() : messages(ok)[0]));
  CHECK(ok.errors.empty());
  // Each level multiplies by ten: 10^7 nodes from a few hundred bytes.
  std::string bomb = "a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n";
  for (int i = 1; i <= 7; ++i) {
    std::string p = "*a" + std::to_string(i - 1);
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? "," : "") + p;
    bomb += "]\n";
  }
  auto m = messages(loadRules(bomb));
  REQUIRE(m.size() == 1);
  INFO(m[0]);
  CHECK(m[0].find("rules.yaml:7:") == 0);  // where the count passed the bound
  CHECK(m[0].find("more than 4000000 YAML nodes") != std::string::npos);
}
