#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::config {

/// A "host:port" socket address as written in config ("127.0.0.1:8080", "[::1]:80").
struct Address {
  std::string host;
  uint16_t port = 0;

  std::string toString() const;
  bool operator==(const Address&) const = default;
};

/// Parses "host:port" with a numeric IPv4/IPv6 host. Returns nullopt when malformed.
std::optional<Address> parseAddress(std::string_view text);

/// Parses "name:port" where name may be a DNS name (used by `dns:`).
std::optional<Address> parseHostPort(std::string_view text);

}  // namespace tether::config
