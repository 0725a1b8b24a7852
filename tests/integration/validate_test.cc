// `tether validate` on good and bad files, and `tether run` refusing a bad config.

#include <catch2/catch.hpp>

#include "tests/integration/harness.h"

using namespace tether::test;

TEST_CASE("validate accepts the docs/design.md examples", "[validate]") {
  std::string out;
  int rc = runCommand(std::string(TETHER_BIN) + " validate -c " TETHER_FIXTURES_DIR
                                                "/design_bootstrap.yaml " TETHER_FIXTURES_DIR
                                                "/design_example.yaml",
                      &out, true);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("ok: 1 service(s), 1 route(s), 2 rule document(s)") != std::string::npos);
}

TEST_CASE("validate prints every error as file:line:col: path: message and exits 1", "[validate]") {
  std::string out;
  int rc = runCommand(std::string(TETHER_BIN) + " validate -c " TETHER_FIXTURES_DIR
                                                "/design_bootstrap.yaml " TETHER_FIXTURES_DIR
                                                "/bad_rules.yaml",
                      &out, false);
  CHECK(rc == 1);
  std::string f = TETHER_FIXTURES_DIR "/bad_rules.yaml";
  CHECK(out == f + ":6:34: spec.endpoints[0]: unknown key \"wieght\" (did you mean \"weight\"?)\n" +
                   f +
                   ":16:16: spec.rules[0].timeout: invalid duration \"soon\" (use e.g. "
                   "300ms, 10s, 1m)\n" +
                   f +
                   ":15:30: spec.rules[0].backends[0].service: unknown service \"ratngs\" "
                   "(did you mean \"ratings\"?)\n");
}

TEST_CASE("validate reports unreadable files and YAML syntax errors", "[validate]") {
  std::string broken = writeFile("broken.yaml", "kind: Service\nspec: [unclosed\n");
  std::string out;
  int rc = runCommand(std::string(TETHER_BIN) +
                          " validate -c " TETHER_FIXTURES_DIR "/design_bootstrap.yaml " + broken +
                          " /nonexistent.yaml",
                      &out, false);
  CHECK(rc == 1);
  CHECK(out.find("/nonexistent.yaml:0:0: cannot read file") != std::string::npos);
  CHECK(out.find(broken + ":3:1: ") != std::string::npos);
}

TEST_CASE("run refuses a bad config and exits non-zero with the error list", "[validate]") {
  std::string bad = writeFile("bad-boot.yaml", "workers: many\nlisteners: 5\n");
  std::string out;
  int rc = runCommand(std::string(TETHER_BIN) + " run -c " + bad, &out, true);
  CHECK(rc == 1);
  CHECK(out.find(bad + ":1:10: workers: expected an integer from 1 to 256") != std::string::npos);
  CHECK(out.find(bad + ":2:12: listeners: expected a list") != std::string::npos);
}

TEST_CASE("validate reads the files run reads: certificates, keys, CA bundles, secrets",
          "[validate]") {
  std::string pki = makePki("validate-pki", {"server", "other"});
  std::string boot =
      writeFile("files-boot.yaml",
                "listeners:\n"
                "  - { name: ok, address: 127.0.0.1:0, tls: { certFile: " +
                    pki + "/server.crt, keyFile: " + pki +
                    "/server.key } }\n"
                    "  - name: missing\n    address: 127.0.0.1:0\n    tls:\n      certFile: "
                    "/nonexistent.crt\n"
                    "      keyFile: " +
                    pki +
                    "/server.key\n"
                    "  - name: mismatch\n    address: 127.0.0.1:0\n    tls:\n      certFile: " +
                    pki + "/server.crt\n      keyFile: " + pki + "/other.key\n");
  std::string rules = writeFile(
      "files-rules.yaml",
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: up }\n"
      "spec:\n  endpoints: [ { address: 127.0.0.1:1 } ]\n  tls:\n    caFile: /nonexistent-ca.pem\n"
      "---\napiVersion: tether.dev/v1alpha1\nkind: HmacAuth\nmetadata: { name: callers }\n"
      "spec:\n  direction: inbound\n  keys:\n"
      "    - { id: k1, caller: orders, secretFile: /nonexistent.key }\n");
  std::string out;
  int rc = runCommand(std::string(TETHER_BIN) + " validate -c " + boot + " " + rules, &out, false);
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find(boot + ":6:17: listeners[1].tls.certFile: ") != std::string::npos);
  CHECK(out.find("/nonexistent.crt") != std::string::npos);
  CHECK(out.find(boot + ":12:16: listeners[2].tls.keyFile: ") != std::string::npos);
  CHECK(out.find("key values mismatch") != std::string::npos);
  CHECK(out.find(rules + ":7:13: spec.tls.caFile: ") != std::string::npos);
  CHECK(out.find(rules + ":15:45: spec.keys[0].secretFile: HmacAuth callers: key k1: ") !=
        std::string::npos);
  // And the same files, present and matching, validate.
  std::string good = writeFile("files-good.yaml",
                               "listeners:\n  - { name: ok, address: 127.0.0.1:0, tls: { "
                               "certFile: " +
                                   pki + "/server.crt, keyFile: " + pki + "/server.key } }\n");
  CHECK(runCommand(std::string(TETHER_BIN) + " validate -c " + good, &out, false) == 0);
}
