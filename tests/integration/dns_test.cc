// DNS discovery: a service's endpoints follow its name, re-resolved on an interval.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

/// Owns one line of /etc/hosts for the test's lifetime (glibc re-reads the file on every
/// lookup), and restores the file when done.
class HostsEntry {
 public:
  explicit HostsEntry(std::string name) : name_(std::move(name)) {
    std::ifstream in("/etc/hosts");
    std::stringstream ss;
    ss << in.rdbuf();
    original_ = ss.str();
    ok_ = access("/etc/hosts", W_OK) == 0;
  }
  ~HostsEntry() {
    if (ok_) std::ofstream("/etc/hosts", std::ios::trunc) << original_;
  }
  bool writable() const { return ok_; }
  void point(const std::string& ip) {
    std::string text = original_;
    if (!text.empty() && text.back() != '\n') text += '\n';
    std::ofstream("/etc/hosts", std::ios::trunc) << text << ip << " " << name_ << "\n";
  }

 private:
  std::string name_;
  std::string original_;
  bool ok_ = false;
};

}  // namespace

TEST_CASE("dns endpoints follow the name as it changes", "[dns]") {
  std::string name = "tether-dns-" + std::to_string(getpid()) + ".test";
  HostsEntry hosts(name);
  if (skipTest(!hosts.writable(),
               "/etc/hosts is not writable here (the DNS test needs to add a name)")) {
    return;
  }
  FakeUpstream first("127.0.0.2");
  FakeUpstream second("127.0.0.3", first.port());  // DNS names addresses, the port is fixed
  REQUIRE(second.port() == first.port());
  hosts.point("127.0.0.2");
  uint16_t port = first.port();
  std::string rules =
      "rules:\n  inline:\n"
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
      "      metadata: { name: named }\n"
      "      spec: { dns: \"" +
      name + ":" + std::to_string(port) +
      "\", dnsRefresh: 200ms }\n"
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
      "      metadata: { name: r }\n"
      "      spec: { hosts: [ named ], rules: [ { backends: [ { service: named } ] } ] }\n";
  TetherProcess t(basicBootstrap(port, rules));
  REQUIRE(t.started());
  uint16_t out = t.port("outbound");
  CHECK(waitUntil([&] { return httpRequest(out, "GET", "/echo", "named").status == 200; }));
  CHECK(first.requestCount() >= 1);
  CHECK(adminGet(t.adminPort(), "/clusters").body.find("127.0.0.2:" + std::to_string(port)) !=
        std::string::npos);

  // The name moves: within a refresh or two, traffic follows it.
  hosts.point("127.0.0.3");
  CHECK(waitUntil([&] {
    httpRequest(out, "GET", "/echo", "named");
    return second.requestCount() > 0;
  }));
  size_t before = first.requestCount();
  for (int i = 0; i < 10; ++i) CHECK(httpRequest(out, "GET", "/echo", "named").status == 200);
  CHECK(first.requestCount() == before);
  CHECK(t.logs().find("dns: named (" + name + ") -> 127.0.0.3:" + std::to_string(port)) !=
        std::string::npos);
  std::string m = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(m, "tether_config_version") >= 3);  // start, first answer, the move
}
