#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/address.h"

namespace tether::proxy {

/// Probes `address` once on the control loop: with a `path`, `GET <path>` must answer a
/// status within one of `expected` (inclusive ranges; empty: any 2xx); without a path, a TCP
/// connect must succeed (nothing is sent). Calls `done(true|false)` once (refused, timeout
/// and wrong status are false).
void probeHttp(uv_loop_t* loop, const config::Address& address, const std::string& path,
               std::chrono::milliseconds timeout, std::function<void(bool)> done,
               std::vector<std::pair<int, int>> expected = {});

}  // namespace tether::proxy
