// The gRPC health protocol's messages (grpc.health.v1), encoded and read by hand-checked
// bytes from the .proto's wire format.

#include "proxy/upstream/health_probe.h"

#include <catch2/catch.hpp>

using namespace tether::proxy;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

}  // namespace

TEST_CASE("grpc health request: framed HealthCheckRequest", "[health]") {
  // The whole server: an empty message.
  CHECK(grpcHealthRequest("") == bytes({0, 0, 0, 0, 0}));
  // service = "a.B": field 1, length-delimited (0x0a), length 3.
  CHECK(grpcHealthRequest("a.B") == bytes({0, 0, 0, 0, 5, 0x0a, 3, 'a', '.', 'B'}));
  // A name of 200 bytes: a two-byte varint length (200 = 0xc8 0x01).
  std::string name(200, 'x');
  std::string framed = grpcHealthRequest(name);
  CHECK(framed.size() == 5 + 3 + 200);
  CHECK(framed.substr(0, 8) == bytes({0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01}));
}

TEST_CASE("grpc health response: the serving status, or -1 for what is not one", "[health]") {
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x08, 1})) == 1);  // SERVING
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x08, 2})) == 2);  // NOT_SERVING
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x08, 3})) == 3);  // SERVICE_UNKNOWN
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 0})) == 0);           // proto3 default: UNKNOWN
  // Unknown fields of every wire type are skipped; the last status wins.
  std::string fields = bytes({0x12, 2, 'h', 'i'}) +             // field 2, bytes
                       bytes({0x19, 1, 2, 3, 4, 5, 6, 7, 8}) +  // field 3, 64-bit
                       bytes({0x25, 1, 2, 3, 4}) +              // field 4, 32-bit
                       bytes({0x08, 2, 0x08, 1});               // status twice
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, static_cast<int>(fields.size())}) + fields) == 1);
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x08, 9})) == 0);  // an unknown enum value
  // Not one well-formed uncompressed message.
  CHECK(grpcHealthStatus("") == -1);
  CHECK(grpcHealthStatus(bytes({1, 0, 0, 0, 2, 0x08, 1})) == -1);       // compressed
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 3, 0x08, 1})) == -1);       // length mismatch
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x08, 0x80})) == -1);    // varint cut short
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 3, 0x12, 5, 'a'})) == -1);  // field past the end
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x0b, 0})) == -1);       // group wire type
  CHECK(grpcHealthStatus(bytes({0, 0, 0, 0, 2, 0x08, 1}) + bytes({0, 0, 0, 0, 0})) == -1);
}
