#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/bootstrap.h"
#include "config/rules.h"
#include "proxy/common/reason.h"

namespace tether::proxy {

using MonoClock = std::chrono::steady_clock;

/// What is known about one request as it passes through, for metrics and the access log.
/// Label values (service, route) come from config, never from the request.
struct StreamInfo {
  config::Direction direction = config::Direction::kOutbound;
  std::string listener;
  std::string downstreamAddress;  // "ip:port" of the peer
  // Views into the stream's pinned snapshot, which outlives the stream.
  std::string_view service;          // chosen service ("" until routed)
  std::string_view route;            // matched route name ("" until routed)
  std::string_view upstreamAddress;  // chosen endpoint
  std::string lane;                  // canary lane ("" for the baseline)
  std::string caller;                // the authenticated caller ("" when none)
  std::string peerIdentity;          // a verified client certificate's URI SAN (mTLS)
  /// Where an iptables-redirected connection was going (originalDestination listeners);
  /// shared by the connection's streams.
  std::shared_ptr<const config::EndpointConfig> originalDestination;
  bool denyUnknownDestinations = false;  // the listener's unknownDestinations: deny
  std::string_view auth;                 // how authentication went ("" when no rule applied)
  MonoClock::time_point start{};         // on the worker's clock, set when the stream starts
  int status = 0;
  Reason reason = Reason::kNone;
  bool grpc = false;    // the request is a gRPC call (content-type application/grpc*)
  int grpcStatus = -1;  // grpc-status of the response (headers or trailers), -1 if none
  uint64_t requestBytes = 0;
  uint64_t responseBytes = 0;
  bool upstreamRequestSent = false;

  /// What a stream knows from its connection, whatever the codec: the listener, the peer,
  /// its verified identity and where an intercepted connection was going.
  static StreamInfo forConnection(const config::ListenerConfig& listener, std::string peer,
                                  std::string_view peerIdentity,
                                  std::shared_ptr<const config::EndpointConfig> original) {
    StreamInfo info;
    info.direction = listener.direction;
    info.listener = listener.name;
    info.downstreamAddress = std::move(peer);
    info.peerIdentity = peerIdentity;
    info.originalDestination = std::move(original);
    info.denyUnknownDestinations =
        listener.unknownDestinations == config::ListenerConfig::Unknown::kDeny;
    return info;
  }
};

}  // namespace tether::proxy
