#include "filters/router/route_filter.h"

#include <algorithm>

#include "filters/common/reply.h"
#include "filters/router/retry_policy.h"
#include "proxy/upstream/upstream.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;
using proxy::Reason;

namespace {

// Envoy's default route timeout: a hung upstream must not hold a stream forever.
constexpr config::Duration kDefaultRouteTimeout = std::chrono::seconds(15);

}  // namespace

void RouteTimeout::arm(proxy::StreamCallbacks& cb, config::Duration timeout, bool fromCaller,
                       bool travels) {
  cb_ = &cb;
  fromCaller_ = fromCaller;
  travels_ = travels;
  armed_ = true;
  atNs_ = cb.worker().clock().nowNs() +
          std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  deadline_.arm(cb.worker().deadlines(), timeout, *this);
}

int64_t RouteTimeout::remainingMs() const {
  return (atNs_ - cb_->worker().clock().nowNs()) / 1'000'000;
}

void RouteTimeout::onDeadline() {
  if (handler_) {
    handler_->onDeadline();
    return;
  }
  // Still in admission: nothing went upstream, the request is answered here.
  cb_->worker().stats().service(cb_->info().service).upstreamTimeouts++;
  replyFailure(*cb_, fromCaller_ ? Reason::kDeadlineExceeded : Reason::kUpstreamTimeout);
}

FilterStatus RouteFilter::onRequestHeaders(proxy::RequestHead& head, bool) {
  auto& info = callbacks_->info();
  const proxy::HeaderString* budgetHeader = head.headers.get(proxy::kTimeoutHeader);
  std::optional<int64_t> budget = parseTimeoutMs(proxy::view(budgetHeader));
  // A gRPC caller's deadline is a budget too; the tighter of the two binds.
  if (auto grpc = parseGrpcTimeoutMs(proxy::view(head.headers.get("grpc-timeout")))) {
    budget = budget ? std::min(*budget, *grpc) : *grpc;
  }
  // The router writes Tether's own value when it forwards; the caller's goes.
  if (budgetHeader) head.headers.remove(proxy::kTimeoutHeader);
  if (budget && *budget <= 0) {
    // The caller has already given up: do not spend the upstream's time on it.
    callbacks_->sendLocalReply(504, "deadline exceeded\n", Reason::kDeadlineExceeded);
    return FilterStatus::kStopIteration;
  }
  proxy::Worker& worker = callbacks_->worker();
  const config::EndpointConfig* original = info.originalDestination.get();
  if (info.direction == config::Direction::kInbound) {
    choice_.rule = table_->inbound();
    // An intercepted inbound connection goes to the app port the client asked for.
    const config::Address& app = worker.bootstrap().localApp.address;
    if (original && original->address.port != app.port) {
      auto e = std::make_shared<config::EndpointConfig>();
      e->address = config::Address{app.host, original->address.port};
      e->addressText = e->address.toString();
      choice_.direct = std::move(e);
    }
  } else {
    choice_.rule = table_->matchOutbound(head, original);
    if (!choice_.rule && original) {
      if (info.denyUnknownDestinations) {
        callbacks_->sendLocalReply(502, "no route to " + original->addressText + "\n",
                                   Reason::kNoRoute);
        return FilterStatus::kStopIteration;
      }
      // Not a known service: on to wherever the app was connecting, like a plain socket.
      choice_.rule = table_->passthrough();
      choice_.direct = info.originalDestination;
    }
  }
  if (!choice_.rule) {
    callbacks_->sendLocalReply(404, "no route\n", Reason::kNoRoute);
    return FilterStatus::kStopIteration;
  }
  info.route = choice_.rule->route->name;  // views into the pinned snapshot
  choice_.backend = RouteTable::pickBackend(*choice_.rule, worker.random());
  if (!choice_.backend) {
    callbacks_->sendLocalReply(503, "no healthy upstream\n", Reason::kNoHealthyUpstream);
    return FilterStatus::kStopIteration;
  }
  info.service = choice_.backend->backend->service;
  if (governance_) choice_.counters = governance_->counters(info.service);

  const config::RouteRule& rule = *choice_.rule->rule;
  config::Duration timeout = rule.timeout.value_or(kDefaultRouteTimeout);
  bool fromCaller = false;
  if (budget && (timeout.count() == 0 || *budget < timeout.count())) {
    timeout = config::Duration(*budget);
    fromCaller = true;
  }
  if (timeout.count() > 0) {
    timeout_.arm(*callbacks_, timeout, fromCaller, fromCaller || rule.timeout.has_value());
  }
  choice_.timeout = &timeout_;
  callbacks_->setRoute(&choice_);
  return FilterStatus::kContinue;
}

}  // namespace tether::filters
