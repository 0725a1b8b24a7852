#include "proxy/common/json.h"

#include <catch2/catch.hpp>
#include <string>

using tether::proxy::JsonValue;
using tether::proxy::JsonWriter;

TEST_CASE("JSON messages parse, escapes included, and round-trip through the writer", "[json]") {
  auto v = JsonValue::parse(
      R"( {"type":"nack","n":-1.5e2,"ok":true,"none":null,"list":[1,"two",{"x":[]}],)"
      R"("text":"line\nquote\" tab\t \u00e9 \ud83d\ude00 \/"} )");
  REQUIRE(v);
  CHECK((*v)["type"].str() == "nack");
  CHECK((*v)["n"].number() == -150);
  CHECK((*v)["ok"].boolean());
  CHECK((*v)["none"].type() == JsonValue::Type::kNull);
  REQUIRE((*v)["list"].items().size() == 3);
  CHECK((*v)["list"].items()[1].str() == "two");
  CHECK((*v)["list"].items()[2]["x"].isArray());
  CHECK((*v)["text"].str() == "line\nquote\" tab\t \xc3\xa9 \xf0\x9f\x98\x80 /");
  CHECK((*v)["missing"]["deeper"].str("fallback") == "fallback");

  JsonWriter w;
  w.beginObject().key("yaml").value((*v)["text"].str()).endObject();
  auto back = JsonValue::parse(w.str());
  REQUIRE(back);
  CHECK((*back)["yaml"].str() == (*v)["text"].str());
}

TEST_CASE("malformed JSON is refused, and nesting is bounded", "[json]") {
  for (const char* bad : {"", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "\"unterminated",
                          "\"bad \\x escape\"", "\"\\ud83d alone\"", "tru", "{} trailing",
                          "\"raw\ncontrol\"", "01x", "{'single':1}"}) {
    INFO(bad);
    CHECK_FALSE(JsonValue::parse(bad));
  }
  std::string deep(40, '[');
  deep += std::string(40, ']');
  CHECK_FALSE(JsonValue::parse(deep));
  CHECK(JsonValue::parse(deep, 64));
}
