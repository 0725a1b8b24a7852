#pragma once

#include <array>
#include <memory>

#include "filters/common/governance.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// CircuitBreaker rules at service and route level: every matching breaker must admit the
/// request (an open one answers 503 circuit_open with Retry-After; a half-open one admits
/// a share as probes), and each is told how the request ended. perEndpoint rules are the
/// router's: they judge each attempt's endpoint.
class CircuitBreakerFilter : public proxy::Filter {
 public:
  explicit CircuitBreakerFilter(std::shared_ptr<const filters::Governance> governance)
      : governance_(std::move(governance)) {}

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  void onStreamComplete(const proxy::StreamInfo& info) override;

 private:
  std::shared_ptr<const filters::Governance> governance_;
  struct Admitted {
    filters::CircuitBreaker* breaker;
    bool probe;
  };
  std::array<Admitted, 4> admitted_{};  // breakers beyond 4 per request are not consulted
  size_t admittedCount_ = 0;
};

/// Whether a finished request counts as a failure for `breaker`: a failure status (or gRPC
/// status), or no answer from the upstream at all.
bool breakerFailure(const filters::CircuitBreaker& breaker, const proxy::StreamInfo& info);

using CircuitBreakerFilterFactory =
    proxy::FactoryOf<CircuitBreakerFilter, std::shared_ptr<const filters::Governance>>;

}  // namespace tether::filters
