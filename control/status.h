#pragma once

#include <string>

#include "config/address.h"

namespace tether::control {

/// `tether status`: asks the control plane's admin port for its sidecars and prints one
/// line each (node, service, address, connected for, acked version, sync state, last NACK),
/// like `istioctl proxy-status`. Returns the exit code (1 when it cannot be reached).
int printStatus(const config::Address& admin, bool json);

/// GET `path` from `address` over HTTP/1.1 (blocking, `timeoutMs` in all); the body on a
/// 200, nullopt-like empty `error` otherwise.
bool httpGet(const config::Address& address, const std::string& path, int timeoutMs,
             std::string& body, std::string& error);

}  // namespace tether::control
