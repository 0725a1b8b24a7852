#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/address.h"

namespace tether::proxy {

/// Probes `address` once on the control loop: with a `path`, `GET <path>` must answer
/// `expectedStatus` (0: any 2xx); without one, a TCP connect must succeed. Calls
/// `done(true|false)` once (refused, timeout and wrong status are false).
void probeHttp(uv_loop_t* loop, const config::Address& address, const std::string& path,
               std::chrono::milliseconds timeout, std::function<void(bool)> done,
               int expectedStatus = 0);

}  // namespace tether::proxy
