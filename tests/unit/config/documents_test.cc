#include "config/documents.h"

#include <catch2/catch.hpp>

using namespace tether::config;

TEST_CASE("rule files split into verbatim documents with their selectors", "[config]") {
  auto docs = splitRuleDocuments(
      "routes.yaml",
      "# leading comment\n---\napiVersion: tether.dev/v1alpha1\nkind: Route\n"
      "metadata: { name: a }\nselector: { service: reviews, labels: { version: v2 } }\n"
      "spec: { hosts: [ a ] }\n--- # a comment after the separator\n\n---\n"
      "kind: Service\nmetadata: { name: b }\nspec: {}\n---\nkind: [ broken\n");
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].source == "routes.yaml#1");
  CHECK(docs[0].kind == "Route");
  CHECK(docs[0].name == "a");
  CHECK(docs[0].text.find("spec: { hosts: [ a ] }\n") != std::string::npos);
  CHECK(docs[0].selects("reviews", {{"version", "v2"}, {"zone", "b"}}));
  CHECK_FALSE(docs[0].selects("reviews", {{"version", "v1"}}));
  CHECK_FALSE(docs[0].selects("ratings", {{"version", "v2"}}));
  CHECK(docs[1].source == "routes.yaml#2");
  CHECK(docs[1].kind == "Service");
  CHECK(docs[1].selects("anything", {}));
  // Served as written: the sidecar's loader reports the syntax error at its position.
  CHECK(docs[2].source == "routes.yaml#3");
  CHECK(docs[2].kind.empty());
  CHECK(docs[2].text == "kind: [ broken\n");
}
