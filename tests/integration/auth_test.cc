// HmacAuth through real Tether processes: a caller sidecar signs, a callee sidecar
// verifies, and curl with `tether sign` plays a client without a sidecar (and an attacker).

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

/// The callee's rule: orders may call /api (not /api/admin) and POST /sha256; billing's
/// key is known but billing is allowed nothing.
std::string calleeRules(const std::string& ordersKey, const std::string& billingKey,
                        const std::string& extra = "") {
  return "rules:\n  inline:\n" +
         doc("HmacAuth", "callers",
             "{ direction: inbound, keys: [ { id: orders-2026, caller: orders, secretFile: " +
                 ordersKey + " }, { id: billing-1, caller: billing, secretFile: " + billingKey +
                 " } ], clockSkew: 300s, signedHeaders: [ host, content-type ], "
                 "maxBodyBytes: 65536, allow: [ { caller: orders, pathPrefix: /api }, "
                 "{ caller: orders, pathPrefix: /sha256, methods: [ POST ] } ], "
                 "deny: [ { pathPrefix: /api/admin } ]" +
                 extra + " }");
}

/// A caller sidecar routing `ratings` to the callee's inbound port and signing as orders-2026.
std::string signingCaller(uint16_t appPort, uint16_t calleePort, const std::string& key) {
  return basicBootstrap(appPort) + "rules:\n  inline:\n" +
         doc("Service", "ratings",
             "{ endpoints: [ { address: 127.0.0.1:" + std::to_string(calleePort) + " } ] }") +
         doc("Route", "ratings",
             "{ hosts: [ ratings ], rules: [ { backends: [ { service: ratings } ] } ] }") +
         doc("HmacAuth", "sign",
             "{ direction: outbound, target: { service: ratings }, keys: [ { id: orders-2026, "
             "secretFile: " +
                 key + " } ], signedHeaders: [ content-type ] }");
}

/// `tether sign ...` as curl arguments.
std::string signedArgs(const std::string& args) {
  std::string out;
  REQUIRE(runCommand(std::string(TETHER_BIN) + " sign " + args, &out) == 0);
  std::string curlArgs;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string line = out.substr(pos, nl - pos);
    if (!line.empty()) curlArgs += " -H '" + line + "'";
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return curlArgs;
}

std::string code(const std::string& curlArgs) {
  return curl("-o /dev/null -w '%{http_code}' " + curlArgs);
}

}  // namespace

TEST_CASE("a caller sidecar signs, the callee sidecar verifies and tells the app who called",
          "[auth]") {
  FakeUpstream app;
  std::string ordersKey = writeFile("orders.key", "orders-secret\n");
  std::string billingKey = writeFile("billing.key", "billing-secret\n");
  TetherProcess callee(basicBootstrap(app.port()) + calleeRules(ordersKey, billingKey));
  REQUIRE(callee.started());
  FakeUpstream unused;
  TetherProcess caller(signingCaller(unused.port(), callee.port("inbound"), ordersKey));
  REQUIRE(caller.started());
  std::string base = "-H 'Host: ratings' -H 'x-tether-caller: admin' http://127.0.0.1:" +
                     std::to_string(caller.port("outbound"));
  CHECK(code(base + "/api/orders") == "200");
  // The app sees the verified caller, not what the request claimed.
  RecordedRequest last = app.lastRequest();
  const std::string* who = last.header("x-tether-caller");
  REQUIRE(who);
  CHECK(*who == "orders");
  // The credentials stop at the sidecar.
  CHECK(last.header("authorization") == nullptr);
  CHECK(last.header("x-tether-nonce") == nullptr);
  // A body, hashed on both sides, arrives intact.
  std::string body(40000, 'x');
  std::string file = writeFile("auth-body.txt", body);
  CHECK(curl("-s -H 'content-type: text/plain' --data-binary @" + file + " " + base + "/sha256") ==
        sha256Hex(body));
  // Authorization on the callee: a path orders may not use.
  CHECK(code(base + "/other") == "403");
  CHECK(code(base + "/api/admin/x") == "403");
  std::string metrics = adminGet(callee.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_auth_requests_total", "result=\"ok\",rule=\"callers\"") == 2);
  CHECK(metricValue(metrics, "tether_auth_caller_requests_total",
                    "caller=\"orders\",rule=\"callers\"") == 2);
  CHECK(metricValue(metrics, "tether_auth_requests_total",
                    "result=\"forbidden\",rule=\"callers\"") == 2);
  CHECK(metricValue(adminGet(caller.adminPort(), "/metrics").body, "tether_auth_requests_total",
                    "result=\"signed\",rule=\"sign\"") == 4);
}

TEST_CASE("the callee refuses unsigned, tampered, replayed, expired and unknown-key requests",
          "[auth]") {
  FakeUpstream app;
  std::string ordersKey = writeFile("orders2.key", "orders-secret");
  std::string billingKey = writeFile("billing2.key", "billing-secret");
  TetherProcess callee(basicBootstrap(app.port()) + calleeRules(ordersKey, billingKey));
  REQUIRE(callee.started());
  std::string url = "http://127.0.0.1:" + std::to_string(callee.port("inbound"));
  // The rule wants content-type signed, present or not.
  std::string sign =
      "--signed-header content-type --key-id orders-2026 --secret-file " + ordersKey + " ";
  auto result = [&](const std::string& r) {
    return metricValue(adminGet(callee.adminPort(), "/metrics").body, "tether_auth_requests_total",
                       "result=\"" + r + "\",rule=\"callers\"");
  };
  size_t before = app.requestCount();

  std::string r = curl("-i " + url + "/api/x");
  CHECK(r.find("HTTP/1.1 401") != std::string::npos);
  CHECK(r.find("x-tether-reason: unauthenticated") != std::string::npos);
  CHECK(r.find("www-authenticate: TETHER-HMAC-SHA256") != std::string::npos);
  CHECK(result("missing") == 1);
  CHECK(code("-H 'authorization: Bearer abc' " + url + "/api/x") == "401");
  CHECK(result("malformed") == 1);

  // Signed for one thing, sent as another.
  std::string post = "-X POST -H 'content-type: text/plain' ";
  std::string h = signedArgs(sign + post + "-d hello " + url + "/api/x");
  CHECK(code(h + " " + post + "-d hellO " + url + "/api/x") == "401");  // body
  CHECK(code(h + " " + post + "-d hello " + url + "/api/y") == "401");  // path
  CHECK(code(h + " -X POST -H 'content-type: text/html' -d hello " + url + "/api/x") == "401");
  CHECK(code(h + " " + post + "-d hello " + url + "/api/x?extra=1") == "401");  // query
  CHECK(result("bad_signature") == 4);
  // None of those burned the nonce: the genuine request still passes, once.
  CHECK(code(h + " " + post + "-d hello " + url + "/api/x") == "200");
  CHECK(code(h + " " + post + "-d hello " + url + "/api/x") == "401");
  CHECK(result("replayed") == 1);

  // A forged signature with a fresh nonce does not burn that nonce either.
  std::string genuine = signedArgs(sign + "--nonce aaaabbbbccccdddd0001 " + url + "/api/z");
  std::string forged =
      std::regex_replace(genuine, std::regex("signature=[0-9a-f]{8}"), "signature=00000000");
  REQUIRE(forged != genuine);
  CHECK(code(forged + " " + url + "/api/z") == "401");
  CHECK(code(genuine + " " + url + "/api/z") == "200");

  // Outside the clock skew, either way.
  CHECK(code(signedArgs(sign + "--date 20200101T000000Z " + url + "/api/x") + " " + url +
             "/api/x") == "401");
  CHECK(code(signedArgs(sign + "--date 20990101T000000Z " + url + "/api/x") + " " + url +
             "/api/x") == "401");
  CHECK(result("expired") == 2);
  // A key the callee does not know, or the right id with the wrong secret.
  std::string stranger = writeFile("stranger.key", "nope");
  CHECK(code(signedArgs("--signed-header content-type --key-id ghost --secret-file " + stranger +
                        " " + url + "/api/x") +
             " " + url + "/api/x") == "401");
  CHECK(result("unknown_key") == 1);
  CHECK(code(signedArgs("--signed-header content-type --key-id orders-2026 --secret-file " +
                        stranger + " " + url + "/api/x") +
             " " + url + "/api/x") == "401");
  // Billing is authenticated but allowed nothing.
  CHECK(code(signedArgs("--signed-header content-type --key-id billing-1 --secret-file " +
                        billingKey + " " + url + "/api/x") +
             " " + url + "/api/x") == "403");
  // A body past maxBodyBytes (64 KiB) cannot be verified.
  std::string big = writeFile("auth-big.bin", std::string(100000, 'b'));
  std::string octets = "-X POST -H 'content-type: application/octet-stream' ";
  CHECK(code(signedArgs(sign + octets + "--data-file " + big + " " + url + "/api/x") + " " +
             octets + "--data-binary @" + big + " " + url + "/api/x") == "413");
  // Of all that, the app saw the two genuine requests only.
  CHECK(app.requestCount() - before == 2);
}

TEST_CASE("keys rotate under load without a refused request; changed key files are re-read",
          "[auth]") {
  FakeUpstream app;
  std::string oldKey = writeFile("rot-old.key", "old-secret");
  std::string newKey = writeFile("rot-new.key", "new-secret");
  // The callee accepts both keys of the caller while it rotates.
  TetherProcess callee(basicBootstrap(app.port()) + "rules:\n  inline:\n" +
                       doc("HmacAuth", "callers",
                           "{ direction: inbound, keys: [ { id: old, caller: orders, secretFile: " +
                               oldKey + " }, { id: new, caller: orders, secretFile: " + newKey +
                               " } ], forwardCredentials: true }"));
  REQUIRE(callee.started());
  auto callerRules = [&](const std::string& keyId) {
    return "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: ratings }\n"
           "spec: { endpoints: [ { address: 127.0.0.1:" +
           std::to_string(callee.port("inbound")) +
           " } ] }\n---\napiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: r }\n"
           "spec: { hosts: [ ratings ], rules: [ { backends: [ { service: ratings } ] } ] }\n"
           "---\napiVersion: tether.dev/v1alpha1\nkind: HmacAuth\nmetadata: { name: sign }\n"
           "spec: { direction: outbound, keyId: " +
           keyId + ", keys: [ { id: old, secretFile: " + oldKey +
           " }, { id: new, secretFile: " + newKey + " } ] }\n";
  };
  std::string rules = writeFile("rot-rules.yaml", callerRules("old"));
  FakeUpstream unused;
  TetherProcess caller(basicBootstrap(unused.port(), "rules: { files: [ \"" + rules + "\" ] }\n"));
  REQUIRE(caller.started());
  std::string out;
  std::thread load([&] {
    runCommand("wrk -t1 -c8 -d3s -H 'Host: ratings' http://127.0.0.1:" +
                   std::to_string(caller.port("outbound")) + "/api",
               &out, true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  writeFile("rot-rules.yaml", callerRules("new"));
  caller.signal(SIGHUP);
  load.join();
  INFO(out);
  CHECK(out.find("requests in") != std::string::npos);
  CHECK(out.find("Non-2xx") == std::string::npos);  // not one 401
  std::string metrics = adminGet(callee.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_auth_requests_total", "result=\"ok\",rule=\"callers\"") >
        1000);
  // Both keys signed some of them: the app got the Authorization headers.
  int oldSeen = 0, newSeen = 0;
  for (const auto& r : app.requests()) {
    const std::string* a = r.header("authorization");
    if (!a) continue;
    oldSeen += a->find("keyId=old,") != std::string::npos;
    newSeen += a->find("keyId=new,") != std::string::npos;
  }
  CHECK(oldSeen > 100);
  CHECK(newSeen > 100);
  CHECK(metricValue(adminGet(caller.adminPort(), "/metrics").body, "tether_config_version") == 2);

  // Step 3: the old key leaves the callee, under the same load: nothing is refused, and a
  // request signed with the old key is refused from then on.
  std::string url = "http://127.0.0.1:" + std::to_string(callee.port("inbound"));
  std::thread load2([&] {
    runCommand("wrk -t1 -c8 -d2s -H 'Host: ratings' http://127.0.0.1:" +
                   std::to_string(caller.port("outbound")) + "/api",
               &out, true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  std::ofstream(callee.configPath())
      << basicBootstrap(app.port()) + "rules:\n  inline:\n" +
             doc("HmacAuth", "callers",
                 "{ direction: inbound, keys: [ { id: new, caller: orders, secretFile: " + newKey +
                     " } ], forwardCredentials: true }");
  callee.signal(SIGHUP);
  load2.join();
  INFO(out);
  CHECK(out.find("requests in") != std::string::npos);
  CHECK(out.find("Non-2xx") == std::string::npos);
  CHECK(metricValue(adminGet(callee.adminPort(), "/metrics").body, "tether_config_version") == 2);
  CHECK(code(signedArgs("--key-id old --secret-file " + oldKey + " " + url + "/a") + " " + url +
             "/a") == "401");

  // A secret rewritten in place is picked up without a restart (checked every 2 s): the
  // old secret stops working, the new one works.
  writeFile("rot-new.key", "newer-secret");
  std::string newer = writeFile("rot-newer.key", "newer-secret");
  CHECK(waitUntil(
      [&] {
        return code(signedArgs("--key-id new --secret-file " + newer + " " + url + "/a") + " " +
                    url + "/a") == "200";
      },
      5000));
  CHECK(code(signedArgs("--key-id new --secret-file " + oldKey + " " + url + "/a") + " " + url +
             "/a") == "401");
}

TEST_CASE("a client written from docs/security.md alone gets through", "[auth]") {
  const std::string client =
      "/usr/bin/python3 " TETHER_SOURCE_DIR "/tests/integration/hmac_client.py";
  // The worked example of the docs: the same signature from both implementations.
  std::string fromPython, fromTether;
  REQUIRE(runCommand(client + " example", &fromPython) == 0);
  std::string key = writeFile("example.key", "orders-secret-2026\n");
  REQUIRE(runCommand(std::string(TETHER_BIN) + " sign --key-id orders-2026 --secret-file " + key +
                         " -X POST -H 'content-type: application/json' -d '{\"item\":42}' --date "
                         "20261126T153000Z --nonce 7f3c2a9e5b1d4e608a2b3c4d5e6f7081 "
                         "'http://ratings:8080/api/v1/orders/../rate?b=2&a=x%20y'",
                     &fromTether) == 0);
  CHECK(fromPython ==
        "TETHER-HMAC-SHA256 keyId=orders-2026, signedHeaders=content-type;host;"
        "x-tether-content-sha256;x-tether-date;x-tether-nonce, "
        "signature=956ab9ec572a549b31a792071aff46aacdb78681b9453da18ec6d96b0b8ed8c6\n");
  CHECK(fromTether.find(fromPython) != std::string::npos);
  // And a live call, with and without a body.
  FakeUpstream app;
  TetherProcess callee(basicBootstrap(app.port()) + "rules:\n  inline:\n" +
                       doc("HmacAuth", "callers",
                           "{ direction: inbound, keys: [ { id: py-1, caller: scripts, "
                           "secretFile: " +
                               key + " } ] }"));
  REQUIRE(callee.started());
  std::string target =
      " 127.0.0.1:" + std::to_string(callee.port("inbound")) + " py-1 orders-secret-2026 ";
  auto call = [&](const std::string& args) {
    std::string out;
    runCommand(client + " call" + args, &out);
    return out;
  };
  CHECK(call(target + "GET '/a/./b?z=1&y=%7e'") == "200\n");
  CHECK(call(target + "POST /echo 'a body'") == "200\n");
  // The wrong secret.
  CHECK(call(target.substr(0, target.size() - 2) + "X POST /echo x") == "401\n");
}

TEST_CASE("mutual TLS between sidecars: the client certificate's SPIFFE ID is the caller",
          "[auth][tls]") {
  std::string pki = tempDir() + "/mtls";
  std::string rogue = tempDir() + "/mtls-rogue";
  std::string certs = TETHER_SOURCE_DIR "/deploy/tether-certs.sh";
  const std::string td = "spiffe://tether.test/ns/default/sa/";
  REQUIRE(runCommand(certs + " ca " + pki + " && " + certs + " issue " + pki + " ratings " + td +
                     "ratings localhost && " + certs + " issue " + pki + " orders " + td +
                     "orders && " + certs + " issue " + pki + " billing " + td + "billing && " +
                     certs + " issue " + pki + " stale " + td + "orders -- 0 && " + certs + " ca " +
                     rogue + " && " + certs + " issue " + rogue + " orders " + td + "orders") == 0);
  FakeUpstream app;
  TetherProcess callee(
      "admin: { address: 127.0.0.1:0 }\nworkers: 1\nlisteners:\n"
      "  - { name: mtls, address: 127.0.0.1:0, direction: inbound, tls: { certFile: " +
      pki + "/ratings.crt, keyFile: " + pki + "/ratings.key, caFile: " + pki +
      "/ca.crt } }\nlocalApp: { address: 127.0.0.1:" + std::to_string(app.port()) +
      " }\nrules:\n  inline:\n" +
      doc("HmacAuth", "callers",
          "{ direction: inbound, peers: [ { identity: \"" + td +
              "orders\", caller: orders } ], "
              "allow: [ { caller: orders, pathPrefix: /api } ] }"));
  REQUIRE(callee.started());
  uint16_t port = callee.port("mtls");
  FakeUpstream unused;
  TetherProcess caller(
      basicBootstrap(unused.port()) + "rules:\n  inline:\n" +
      doc("Service", "ratings",
          "{ tls: { sni: localhost, caFile: " + pki + "/ca.crt, certFile: " + pki +
              "/orders.crt, keyFile: " + pki +
              "/orders.key }, endpoints: [ { address: "
              "127.0.0.1:" +
              std::to_string(port) + " } ] }") +
      doc("Route", "ratings",
          "{ hosts: [ ratings ], rules: [ { backends: [ { service: ratings } ] } ] }"));
  REQUIRE(caller.started());
  // Through the caller's sidecar: mutual TLS, and the app learns who called.
  CHECK(code("-H 'Host: ratings' http://127.0.0.1:" + std::to_string(caller.port("outbound")) +
             "/api/x") == "200");
  RecordedRequest last = app.lastRequest();
  REQUIRE(last.header("x-tether-caller"));
  CHECK(*last.header("x-tether-caller") == "orders");
  CHECK(metricValue(adminGet(callee.adminPort(), "/metrics").body, "tether_auth_requests_total",
                    "result=\"mtls\",rule=\"callers\"") == 1);

  std::string url = " https://localhost:" + std::to_string(port);
  std::string ca = " --cacert " + pki + "/ca.crt";
  auto with = [&](const std::string& dir, const std::string& name) {
    return ca + " --cert " + dir + "/" + name + ".crt --key " + dir + "/" + name + ".key";
  };
  CHECK(code(with(pki, "orders") + url + "/api/y") == "200");
  CHECK(code(with(pki, "orders") + url + "/other") == "403");   // authorization
  CHECK(code(with(pki, "billing") + url + "/api/y") == "401");  // a peer it does not know
  // The handshake itself fails (curl gets no HTTP status): no certificate, an untrusted CA,
  // an expired certificate.
  auto handshakeFails = [&](const std::string& args) {
    std::string out = code(args + url + "/api/y");
    return out.size() >= 3 && out.substr(out.size() - 3) == "000";
  };
  CHECK(handshakeFails(ca));
  CHECK(handshakeFails(with(rogue, "orders")));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // `stale` is past its end
  CHECK(handshakeFails(with(pki, "stale")));
  CHECK(app.requestCount() == 2);
}

TEST_CASE("the verified caller is the key of a rate limit, whatever the request claims", "[auth]") {
  FakeUpstream app;
  std::string key = writeFile("rl-orders.key", "orders-secret");
  TetherProcess callee(
      basicBootstrap(app.port()) + "rules:\n  inline:\n" +
      doc("HmacAuth", "callers",
          "{ direction: inbound, keys: [ { id: o1, caller: orders, secretFile: " + key + " } ] }") +
      doc("RateLimit", "per-caller",
          "{ target: { direction: inbound }, limit: 2, per: 60s, burst: 2, "
          "key: caller }"));
  REQUIRE(callee.started());
  std::string url = "http://127.0.0.1:" + std::to_string(callee.port("inbound")) + "/x";
  auto signedCall = [&](const std::string& claimed) {
    return code(signedArgs("--key-id o1 --secret-file " + key + " -H 'x-tether-caller: " + claimed +
                           "' " + url) +
                " -H 'x-tether-caller: " + claimed + "' " + url);
  };
  // Three callers claimed, one proven: the bucket of "orders" holds two.
  CHECK(signedCall("alice") == "200");
  CHECK(signedCall("bob") == "200");
  CHECK(signedCall("carol") == "429");
}

TEST_CASE("path tricks reach neither a denied path nor one outside the allowed prefix",
          "[auth][path]") {
  FakeUpstream app;
  std::string ordersKey = writeFile("orders-path.key", "orders-secret\n");
  std::string billingKey = writeFile("billing-path.key", "billing-secret\n");
  TetherProcess callee(basicBootstrap(app.port()) + calleeRules(ordersKey, billingKey));
  REQUIRE(callee.started());
  FakeUpstream unused;
  TetherProcess caller(signingCaller(unused.port(), callee.port("inbound"), ordersKey));
  REQUIRE(caller.started());
  // Through the caller's sidecar, which signs what it forwards: each spelling is normalized
  // once, signed, verified and authorized as the path it spells.
  const char* outside[] = {"/api/../admin/x", "/api/%2e%2e/admin/x", "/api/%2E%2E/admin/x",
                           "/api/./../admin/x"};
  const char* denied[] = {"/api//admin",    "/api/./admin",  "/%61pi/admin",
                          "/api/%61dmin/x", "//api/admin/x", "/api/x/../admin"};
  for (const char* target : outside) {
    INFO(target);
    CHECK(httpRequest(caller.port("outbound"), "GET", target, "ratings").status == 403);
  }
  for (const char* target : denied) {
    INFO(target);
    CHECK(httpRequest(caller.port("outbound"), "GET", target, "ratings").status == 403);
  }
  // What cannot be normalized safely is refused before anything else sees it.
  for (const char* target : {"/api/%2fadmin", "/api%5cadmin", "/api/%zz"}) {
    INFO(target);
    HttpResponse r = httpRequest(caller.port("outbound"), "GET", target, "ratings");
    CHECK(r.status == 400);
    CHECK((r.header("x-tether-reason") && *r.header("x-tether-reason") == "bad_request"));
  }
  CHECK(app.requestCount() == 0);
  // The normalized path is what is forwarded.
  CHECK(httpRequest(caller.port("outbound"), "GET", "/api/v1/../orders//x", "ratings").status ==
        200);
  REQUIRE(app.requestCount() == 1);
  CHECK(app.lastRequest().target == "/api/orders/x");

  // A client without a sidecar that signs the trick itself gets no further.
  std::string base =
      "--path-as-is -H 'Host: ratings' http://127.0.0.1:" + std::to_string(callee.port("inbound"));
  for (const char* target :
       {"/api/../admin/x", "/api/%2e%2e/admin/x", "/api//admin", "/api/./admin", "/%61pi/admin"}) {
    INFO(target);
    std::string url = "http://ratings" + std::string(target);
    std::string status = code(signedArgs("--signed-header content-type --key-id orders-2026 "
                                         "--secret-file " +
                                         ordersKey + " '" + url + "'") +
                              " " + base + target);
    CHECK((status == "403" || status == "401"));
  }
  CHECK(app.requestCount() == 1);
}

TEST_CASE("a request with two authorization headers is refused", "[auth]") {
  FakeUpstream app;
  std::string ordersKey = writeFile("orders-dup.key", "orders-secret\n");
  std::string billingKey = writeFile("billing-dup.key", "billing-secret\n");
  TetherProcess callee(basicBootstrap(app.port()) + calleeRules(ordersKey, billingKey));
  REQUIRE(callee.started());
  std::string url = "http://ratings/api/x";
  std::string base =
      "-H 'Host: ratings' http://127.0.0.1:" + std::to_string(callee.port("inbound")) + "/api/x";
  std::string sign = "--signed-header content-type --key-id orders-2026 --secret-file " + ordersKey;
  std::string sig = signedArgs(sign + " " + url);
  CHECK(code(sig + " " + base) == "200");
  std::string sig2 = signedArgs(sign + " " + url);
  std::string r = curl("-i " + sig2 + " -H 'Authorization: junk' " + base);
  CHECK(r.rfind("HTTP/1.1 401", 0) == 0);
  CHECK(r.find("x-tether-reason: unauthenticated") != std::string::npos);
  CHECK(app.requestCount() == 1);
}
