// TLS termination and origination through the real binary, with certificates the test makes
// with openssl: curl and openssl s_client as clients, nginx (verifying client certificates)
// as a TLS origin.

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string tlsBootstrap(uint16_t appPort, const std::string& pki, const std::string& extra = "",
                         bool required = true) {
  return "admin: { address: 127.0.0.1:0 }\nworkers: 1\nlisteners:\n"
         "  - { name: tls, address: 127.0.0.1:0, direction: inbound, tls: { certFile: " +
         pki + "/server.crt, keyFile: " + pki + "/server.key" +
         (required ? "" : ", required: false") +
         " } }\n"
         "  - { name: outbound, address: 127.0.0.1:0, direction: outbound }\n"
         "localApp: { address: 127.0.0.1:" +
         std::to_string(appPort) + " }\n" + extra;
}

std::string subjectSeen(uint16_t port) {
  std::string out;
  runCommand("echo | timeout 5 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                 " 2>/dev/null | grep -m1 '^subject='",
             &out);
  return out;
}

}  // namespace

TEST_CASE("TLS termination: ALPN h2 and http/1.1, TLS 1.2 and 1.3, resumption", "[tls]") {
  std::string pki = makePki("pki1", {"server"});
  FakeUpstream app;
  TetherProcess t(tlsBootstrap(app.port(), pki));
  REQUIRE(t.started());
  std::string url = "https://localhost:" + std::to_string(t.port("tls"));
  std::string ca = " --cacert " + pki + "/ca.crt ";
  CHECK(curl("-w ' %{http_version}'" + ca + url + "/x") == "ok\n 2");
  CHECK(curl("--http1.1 -w ' %{http_version}'" + ca + url + "/x") == "ok\n 1.1");
  CHECK(curl("--tlsv1.2 --tls-max 1.2 -o /dev/null -w '%{http_code}'" + ca + url + "/") == "200");
  CHECK(curl("--tlsv1.3 -o /dev/null -w '%{http_code}'" + ca + url + "/") == "200");

  // A 2 MB body both ways over h2 + TLS, checked by the origin's hash.
  std::string body(2000000, 'z');
  writeFile("tls-up.bin", body);
  CHECK(curl("--data-binary @" + tempDir() + "/tls-up.bin" + ca + url + "/sha256") ==
        sha256Hex(body));

  // TLS 1.2 session resumption: the second handshake reuses the first session.
  std::string sess = tempDir() + "/tls12.sess";
  std::string sc = "echo | timeout 5 openssl s_client -tls1_2 -connect 127.0.0.1:" +
                   std::to_string(t.port("tls"));
  std::string out;
  runCommand(sc + " -sess_out " + sess + " 2>&1", &out);
  out.clear();
  runCommand(sc + " -sess_in " + sess + " 2>&1", &out);
  CHECK(out.find("Reused, TLSv1.2") != std::string::npos);

  // Plaintext on a TLS listener: closed without an answer, nothing forwarded.
  size_t before = app.requestCount();
  RawClient c(t.port("tls"));
  c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.readAll(2000).empty());
  CHECK(app.requestCount() == before);
}

TEST_CASE("a TLS listener with required: false serves plaintext too", "[tls]") {
  std::string pki = makePki("pki2", {"server"});
  FakeUpstream app;
  TetherProcess t(tlsBootstrap(app.port(), pki, "", false));
  REQUIRE(t.started());
  CHECK(curl("http://127.0.0.1:" + std::to_string(t.port("tls")) + "/x") == "ok\n");
  CHECK(curl("--cacert " + pki + "/ca.crt https://localhost:" + std::to_string(t.port("tls")) +
             "/x") == "ok\n");
}

TEST_CASE("certificates are re-read when their files change", "[tls]") {
  std::string pki = makePki("pki3", {"server", "renewed"});
  FakeUpstream app;
  TetherProcess t(tlsBootstrap(app.port(), pki));
  REQUIRE(t.started());
  CHECK(subjectSeen(t.port("tls")).find("CN = server") != std::string::npos);
  // The way cert-manager renews: new files renamed over the old ones.
  REQUIRE(runCommand("cd " + pki + " && cp renewed.crt n.crt && cp renewed.key n.key && " +
                     "mv n.key server.key && mv n.crt server.crt") == 0);
  CHECK(waitUntil(
      [&] { return subjectSeen(t.port("tls")).find("CN = renewed") != std::string::npos; }, 8000));
  CHECK(t.running());
}

TEST_CASE("TLS origination with a client certificate to an origin that verifies it", "[tls]") {
  std::string pki = makePki("pki4", {"origin", "client"});
  uint16_t port = freePort();
  uint16_t h1port = freePort();
  std::string conf = writeFile(
      "nginx-tls.conf",
      "daemon off;\nworker_processes 1;\npid " + pki + "/nginx.pid;\nerror_log " + pki +
          "/nginx.err;\nevents {}\nhttp {\n access_log off;\n client_body_temp_path " + pki +
          ";\n server {\n  listen 127.0.0.1:" + std::to_string(port) +
          " ssl http2;\n  ssl_certificate " + pki + "/origin.crt;\n  ssl_certificate_key " + pki +
          "/origin.key;\n  ssl_client_certificate " + pki +
          "/ca.crt;\n  ssl_verify_client on;\n  location / { return 200 \"client=$ssl_client_s_dn "
          "proto=$server_protocol\\n\"; }\n }\n"
          " server {\n  listen 127.0.0.1:" +
          std::to_string(h1port) + " ssl;\n  ssl_certificate " + pki +
          "/origin.crt;\n  ssl_certificate_key " + pki +
          "/origin.key;\n  location / { return 200 \"proto=$server_protocol\\n\"; }\n }\n}\n");
  ChildProcess nginx("nginx -e " + pki + "/nginx.err -c " + conf);
  REQUIRE(waitUntil([&] {
    return runCommand("curl -sk -o /dev/null https://127.0.0.1:" + std::to_string(port)) == 0;
  }));
  auto service = [&](const std::string& name, const std::string& protocol, const std::string& tls,
                     uint16_t to = 0) {
    return "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n      metadata: { name: " +
           name + " }\n      spec: { protocol: " + protocol + ", tls: " + tls +
           ", endpoints: [ { address: 127.0.0.1:" + std::to_string(to ? to : port) +
           " } ] }\n"
           "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n      metadata: { name: " +
           name + " }\n      spec: { hosts: [ " + name +
           " ], rules: [ { backends: [ { service: " + name + " } ] } ] }\n";
  };
  std::string mtls = "{ sni: origin, caFile: " + pki + "/ca.crt, certFile: " + pki +
                     "/client.crt, keyFile: " + pki + "/client.key }";
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()) + "rules:\n  inline:\n" +
                  service("h1tls", "http1", mtls) + service("h2tls", "http2", mtls) +
                  service("nocert", "http1", "{ sni: origin, caFile: " + pki + "/ca.crt }") +
                  service("wrongname", "http1", "{ sni: other, caFile: " + pki + "/ca.crt }") +
                  service("autoh2", "auto", mtls) + service("autoh1", "auto", mtls, h1port));
  REQUIRE(t.started());
  std::string base = "http://127.0.0.1:" + std::to_string(t.port("outbound")) + "/";
  CHECK(curl("-H 'Host: h1tls' " + base) == "client=CN=client proto=HTTP/1.1\n");
  CHECK(curl("-H 'Host: h2tls' " + base) == "client=CN=client proto=HTTP/2.0\n");
  // Without a client certificate nginx answers 400; a name the certificate does not carry
  // fails verification, so the request never leaves.
  CHECK(curl("-o /dev/null -w '%{http_code}' -H 'Host: nocert' " + base) == "400");
  HttpResponse wrong = httpRequest(t.port("outbound"), "GET", "/", "wrongname");
  CHECK(wrong.status == 502);
  CHECK((wrong.header("x-tether-reason") && *wrong.header("x-tether-reason") == "upstream_reset"));
  // protocol: auto lets ALPN decide: h2 where the origin offers it, HTTP/1.1 where not.
  for (int i = 0; i < 3; ++i) {
    CHECK(curl("-H 'Host: autoh2' " + base) == "client=CN=client proto=HTTP/2.0\n");
    CHECK(curl("-H 'Host: autoh1' " + base) == "proto=HTTP/1.1\n");
  }
}
