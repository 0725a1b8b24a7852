#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/address.h"

namespace tether::proxy {

/// Asks the local app `GET <path>` once; calls `done(true)` on a 2xx answer, `done(false)`
/// on anything else (refused, timeout, non-2xx). Runs on the control loop.
void probeHttp(uv_loop_t* loop, const config::Address& address, const std::string& path,
               std::chrono::milliseconds timeout, std::function<void(bool)> done);

}  // namespace tether::proxy
