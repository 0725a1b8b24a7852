#pragma once
// Drives one filter of a stream by hand: the routing filter runs first on the same fake
// callbacks (it is what every later filter reads), and time is a ManualClock the test moves.

#include <unistd.h>

#include <memory>
#include <string>

#include "filters/common/shared_state.h"
#include "filters/router/route_filter.h"
#include "proxy/common/clock.h"
#include "tests/fakes/fake_stream.h"
#include "tests/unit/filters/rules_fixture.h"

namespace tether::test {

struct FilterFixture {
  explicit FilterFixture(const std::string& rules, const std::string& bootstrap = "")
      : config(loadRules(rules, bootstrap)),
        table(std::make_shared<const filters::RouteTable>(config)),
        cb(config, &clock),
        governance(filters::Governance::build(*config, state)),
        route(table, governance) {
    cb.attach(route);
  }
  ~FilterFixture() { route.onDestroy(); }

  /// A GET (or `method`) for `authority` `path`, routed: the routing filter has run.
  proxy::RequestHead& request(const std::string& authority, const std::string& path = "/",
                              const std::string& method = "GET") {
    cb.requestHead = proxy::RequestHead{};
    cb.requestHead.method = method;
    cb.requestHead.path = path;
    cb.requestHead.authority = authority;
    routed = route.onRequestHeaders(cb.requestHead, true) == proxy::FilterStatus::kContinue;
    return cb.requestHead;
  }
  /// Moves time on and fires what fell due.
  void advance(std::chrono::nanoseconds d) {
    clock.advance(d);
    cb.fireDeadlines();
  }

  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const filters::RouteTable> table;
  filters::SharedState state;  // what the server's FilterChains would own
  proxy::ManualClock clock;
  FakeStreamCallbacks cb;
  std::shared_ptr<const filters::Governance> governance;
  filters::RouteFilter route;
  bool routed = false;
};

/// A Service `name` with one endpoint and a Route for host `name` to it; `extra` YAML
/// fields go into the route rule.
inline std::string serviceAndRoute(const std::string& name, const std::string& extra = "",
                                   const std::string& serviceExtra = "") {
  return "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: " + name +
         " }\nspec: { endpoints: [ { address: 127.0.0.1:9 } ]" + serviceExtra +
         " }\n---\napiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: " + name +
         " }\nspec: { hosts: [ " + name + " ], rules: [ { backends: [ { service: " + name + " } ]" +
         extra + " } ] }\n";
}

/// A file of its own holding `content` (a secret the config loader reads); the caller
/// removes it.
inline std::string writeTempFile(const std::string& content) {
  char path[] = "/tmp/tether-secret-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  close(fd);
  return path;
}

inline std::string ruleDoc(const std::string& kind, const std::string& name,
                           const std::string& spec) {
  return "---\napiVersion: tether.dev/v1alpha1\nkind: " + kind + "\nmetadata: { name: " + name +
         " }\nspec: " + spec + "\n";
}

}  // namespace tether::test
