// Inbound HmacAuth on the fake stream and clock: a request signed by the outbound filter is
// verified and its caller handed on; a replay, a tampered request and one outside the
// clock skew are refused with 401 and the reason.

#include <unistd.h>

#include <catch2/catch.hpp>

#include "filters/auth/hmac_filter.h"
#include "filters/auth/sign_filter.h"
#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

namespace {

/// One outbound rule that signs as orders-1 and one inbound rule that verifies it, over the
/// same secret file; time is the fixture's ManualClock for both.
struct AuthFixture {
  AuthFixture()
      : secret(test::writeTempFile("shared-secret")),
        f(test::serviceAndRoute("ratings") +
          test::ruleDoc(
              "HmacAuth", "sign",
              "{ direction: outbound, keys: [ { id: orders-1, secretFile: " + secret + " } ] }") +
          test::ruleDoc("HmacAuth", "verify",
                        "{ direction: inbound, clockSkew: 300s, keys: [ { id: orders-1, caller: "
                        "orders, secretFile: " +
                            secret + " } ], allow: [ { caller: orders, pathPrefix: /api } ] }")),
        rules(AuthRules::build(*f.config, f.state)) {}
  ~AuthFixture() { unlink(secret.c_str()); }

  /// A request to /api/`path`, signed now by the outbound filter.
  proxy::RequestHead signedRequest(const std::string& path = "/api/items") {
    proxy::RequestHead head = f.request("ratings", path);
    SignFilter signer(rules);
    f.cb.attach(signer);
    f.cb.hooks.clear();
    REQUIRE(signer.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue);
    f.cb.runUpstreamHooks(head, "ratings");
    f.cb.hooks.clear();
    return head;
  }
  /// Runs the inbound filter on `head`; true when it let the request on.
  bool verify(proxy::RequestHead head) {
    f.cb.info().direction = config::Direction::kInbound;
    f.cb.info().caller.clear();
    HmacVerifyFilter verifier(rules);
    f.cb.attach(verifier);
    bool passed = verifier.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue;
    f.cb.info().direction = config::Direction::kOutbound;
    return passed;
  }

  std::string secret;
  FilterFixture f;
  std::shared_ptr<const AuthRules> rules;
};

}  // namespace

TEST_CASE("a signed request is verified once and its caller handed on", "[filters][auth]") {
  AuthFixture a;
  proxy::RequestHead head = a.signedRequest();
  CHECK(a.verify(head));
  CHECK(a.f.cb.info().caller == "orders");
  CHECK(a.f.cb.localReplies.empty());
  // The same request again is a replay.
  CHECK(!a.verify(head));
  REQUIRE(a.f.cb.localReplies.size() == 1);
  CHECK(a.f.cb.localReplies[0].status == 401);
  CHECK(a.f.cb.localReplies[0].reason == proxy::Reason::kUnauthenticated);
  CHECK(a.f.cb.localReplies[0].headers.get("www-authenticate") != nullptr);
}

TEST_CASE("a tampered, a stale or a forbidden request is refused", "[filters][auth]") {
  AuthFixture a;
  proxy::RequestHead tampered = a.signedRequest();
  tampered.path = "/api/other";
  CHECK(!a.verify(tampered));

  // Signed now, arriving past the 300 s skew.
  proxy::RequestHead late = a.signedRequest();
  a.f.clock.advance(std::chrono::seconds(301));
  CHECK(!a.verify(late));
  // Signed now, arriving within it.
  proxy::RequestHead onTime = a.signedRequest();
  a.f.clock.advance(std::chrono::seconds(299));
  CHECK(a.verify(onTime));

  // A genuine signature for a path the caller is not allowed.
  CHECK(!a.verify(a.signedRequest("/admin")));
  REQUIRE(a.f.cb.localReplies.size() == 3);
  CHECK(a.f.cb.localReplies[0].status == 401);
  CHECK(a.f.cb.localReplies[1].status == 401);
  CHECK(a.f.cb.localReplies[2].status == 403);
  CHECK(a.f.cb.localReplies[2].reason == proxy::Reason::kForbidden);
}
