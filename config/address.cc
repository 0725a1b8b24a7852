#include "config/address.h"

#include <arpa/inet.h>

#include <charconv>

namespace tether::config {

std::string Address::toString() const {
  if (host.find(':') != std::string::npos) return '[' + host + "]:" + std::to_string(port);
  return host + ':' + std::to_string(port);
}

std::optional<Address> parseHostPort(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  std::string_view portText = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || ptr != portText.data() + portText.size() || port > 65535 ||
      portText.empty()) {
    return std::nullopt;
  }
  return Address{std::string(host), static_cast<uint16_t>(port)};
}

std::optional<Address> parseAddress(std::string_view text) {
  auto addr = parseHostPort(text);
  if (!addr) return std::nullopt;
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr->host.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, addr->host.c_str(), buf) != 1) {
    return std::nullopt;
  }
  return addr;
}

}  // namespace tether::config
