#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace tether::proxy {

class Worker;

/// One check of one endpoint, complete in itself so it can cross to a worker's thread.
struct ProbeSpec {
  config::HealthCheckType type = config::HealthCheckType::kTcp;
  config::Address address;
  std::string key;  // address.toString(): the worker's pool key
  /// HTTP and gRPC checks speak what the service speaks: its protocol and TLS settings.
  config::Protocol protocol = config::Protocol::kHttp1;
  std::optional<config::TlsClientConfig> tls;
  std::string path;       // HTTP: the request target
  std::string authority;  // Host / :authority
  std::string grpcService;
  /// HTTP: statuses that pass, as inclusive ranges; empty: any 2xx.
  std::vector<std::pair<int, int>> expectedStatuses;
  std::chrono::milliseconds timeout{1000};
};

/// What a check found: `detail` says why it failed ("connect failed: ECONNREFUSED",
/// "status 503", "timeout", "NOT_SERVING", ...), for the log.
struct ProbeResult {
  bool ok = false;
  std::string detail;
};

/// Runs `spec` on `worker` (call on its thread) with the worker's own connection pools and
/// codecs: a TCP connect; an HTTP/1.1 or HTTP/2 request, over TLS when the service uses it;
/// or a grpc.health.v1.Health/Check call. `done` is called once on the worker's thread,
/// unless the worker stops first.
void runProbe(Worker& worker, ProbeSpec spec, std::function<void(ProbeResult)> done);

/// gRPC health protocol (grpc.health.v1): the Check request message for `service`, framed
/// (compression flag, 4-byte length, protobuf HealthCheckRequest{service = 1}).
std::string grpcHealthRequest(std::string_view service);
/// Reads the HealthCheckResponse.status of a framed response body: 1 is SERVING, 0
/// UNKNOWN (also an empty message), 2 NOT_SERVING, 3 SERVICE_UNKNOWN; -1 when the body is
/// not one well-formed uncompressed message.
int grpcHealthStatus(std::string_view body);

}  // namespace tether::proxy
