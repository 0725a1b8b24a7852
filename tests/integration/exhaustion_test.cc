// Running out of descriptors: Tether stops accepting for short back-offs instead of spinning
// on accept(), keeps serving what it holds, answers its admin probes, and recovers alone.

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

/// CPU seconds (user + system) the process has used.
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

size_t openDescriptors(pid_t pid) {
  size_t n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("out of descriptors, Tether backs off accepting, keeps serving and recovers",
          "[limits][descriptors]") {
  FakeUpstream app;
#if defined(__SANITIZE_ADDRESS__)
  // Out of descriptors, UBSan's vptr check cannot probe memory (a pipe) and reports invalid
  // vptrs it could not read: the proxy must carry on past them (the harness does not count
  // them; ASan still halts on anything real).
  const char* ubsan = std::getenv("UBSAN_OPTIONS");
  std::string saved = ubsan ? ubsan : "";
  setenv("UBSAN_OPTIONS", (saved + ":halt_on_error=0").c_str(), 1);
  TetherProcess t(basicBootstrap(app.port()));
  setenv("UBSAN_OPTIONS", saved.c_str(), 1);
#else
  TetherProcess t(basicBootstrap(app.port()));
#endif
  REQUIRE(t.started());
  // As `ulimit -n 256` would, on the running process.
  rlimit lim{256, 256};
  REQUIRE(prlimit(t.pid(), RLIMIT_NOFILE, &lim, nullptr) == 0);
  uint16_t port = t.port("inbound");

  // 400 keep-alive clients: each accepted one holds a descriptor, and its request one more
  // for the upstream, until none is left; the rest wait in the listen backlog.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 400; ++i) {
    clients.push_back(std::make_unique<RawClient>(port));
    REQUIRE(clients.back()->connected());
    clients.back()->send("GET /x HTTP/1.1\r\nHost: app\r\n\r\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Out of descriptors, the proxy waits instead of spinning: libuv's accept loop retried
  // accept() without end here, a core's worth, and starved every other connection.
  double before = cpuSeconds(t.pid());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  double used = cpuSeconds(t.pid()) - before;
  CHECK(used < 0.4);
  CHECK(openDescriptors(t.pid()) >= 250);  // it really is out of them

  int answered = 0, connectFailures = 0;
  for (auto& c : clients) {
    HttpResponse r;
    if (!c->readResponse(r, false, 5)) continue;
    ++answered;
    const std::string* reason = r.header("x-tether-reason");
    if (r.status == 502 && reason && *reason == "upstream_connect_failure") ++connectFailures;
  }
  CHECK(answered > 0);
  CHECK(answered < 400);

  // The clients leave: the descriptors come back, the backlog is served (its connections
  // find their peers gone) and nothing is left behind in CLOSE-WAIT.
  clients.clear();
  auto closeWait = [port] {
    std::string out;
    runCommand("ss -Htn state close-wait '( sport = :" + std::to_string(port) + " )' | wc -l",
               &out);
    return std::stoi(out);
  };
  CHECK(waitUntil([&] { return closeWait() == 0; }, 10000));
  HttpResponse r = httpRequest(port, "GET", "/after", "app");
  CHECK(r.status == 200);
  CHECK(adminGet(t.adminPort(), "/ready").status == 200);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  INFO(metrics);
  CHECK(metricValue(metrics, "tether_accept_paused_total",
                    "listener=\"inbound\",reason=\"process_fd_limit\"") > 0);
  // Every 502 the clients saw was counted.
  CHECK(metricValue(metrics, "tether_upstream_connect_failures_total", "local_app") >=
        connectFailures);
  // Said once per interval, not once per failed accept().
  std::string logs = t.logs();
  CHECK(count(logs, "cannot accept") >= 1);
  CHECK(count(logs, "cannot accept") <= 8);
  CHECK(t.running());
}

TEST_CASE("too few descriptors to start: exit 1 with the reason, never a crash or a hang",
          "[limits][descriptors]") {
  FakeUpstream app;
  std::string config = writeFile("fd-start.yaml", basicBootstrap(app.port(), "", 2));
#if defined(__SANITIZE_ADDRESS__)
  // As above: UBSan's vptr probe needs a descriptor too, and reports what it could not read.
  const char* ubsan = std::getenv("UBSAN_OPTIONS");
  std::string saved = ubsan ? ubsan : "";
  setenv("UBSAN_OPTIONS", (saved + ":halt_on_error=0").c_str(), 1);
#endif
  std::set<std::string> reasons;
  bool started = false;
  // From a limit that leaves no room for the control loop up to one that leaves room for
  // everything: each step fails a later part of start-up, until Tether runs. The wrapper
  // closes what this test process would pass on, so the limit counts Tether's descriptors
  // only. (Below 6, libuv's own process-wide signal pipe fails and libuv aborts before
  // Tether can say anything.)
  const std::string wrapper =
      "/usr/bin/python3 -c 'import os, resource, sys; os.closerange(3, 1 << 16); "
      "n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
      "os.execv(sys.argv[2], sys.argv[2:])' ";
  for (int limit = 6; limit <= 64 && !started; limit += 2) {
    INFO("RLIMIT_NOFILE " << limit);
    std::string out;
    // Started, it drains and exits 0 on the SIGTERM that `timeout` sends.
    int rc = runCommand("timeout --preserve-status -s TERM 2 " + wrapper + std::to_string(limit) +
                            " " + TETHER_BIN + " run -c " + config,
                        &out, true);
    started = out.find("tether started") != std::string::npos;
    if (started) {
      CHECK(rc == 0);
      break;
    }
    INFO(out);
    CHECK(rc == 1);  // not a signal, not a hang (timeout would have stopped it: 143)
    std::smatch m;
    static const std::regex kReason(" error ([^\\n]*cannot [^\\n]*)");
    REQUIRE(std::regex_search(out, m, kReason));
    CHECK(out.find("fatal") == std::string::npos);
    reasons.insert(std::regex_replace(m[1].str(), std::regex("127\\.0\\.0\\.1:\\d+"), "ADDR"));
  }
#if defined(__SANITIZE_ADDRESS__)
  setenv("UBSAN_OPTIONS", saved.c_str(), 1);
#endif
  CHECK(started);
  INFO(Catch::Detail::stringify(std::vector<std::string>(reasons.begin(), reasons.end())));
  // Every stage of start-up that needs descriptors says what it could not do.
  for (const char* stage :
       {"cannot create the control loop", "cannot listen on",
        "worker 0: cannot create its event loop", "worker 1: cannot create its event loop"}) {
    bool seen = false;
    for (const auto& r : reasons) seen |= r.find(stage) != std::string::npos;
    CHECK(seen);
  }
}
