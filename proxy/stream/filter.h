#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include "proxy/codec/headers.h"
#include "proxy/common/reason.h"
#include "proxy/stream/stream_info.h"

namespace tether::proxy {

class Snapshot;
class Worker;

/// What a filter returns from each event (Envoy's semantics, reduced to two):
/// Continue passes the event to the next filter; StopIteration holds it (and every later
/// event of the same direction) until the filter calls continueRequest()/continueResponse(),
/// or ends the stream with sendLocalReply().
enum class FilterStatus { kContinue, kStopIteration };

/// The route a stream takes: chosen once, by the routing filter, before any admission
/// filter runs, and kept for the stream's life (Envoy's route()). The stream only carries
/// it; the filters define what it holds.
class Route {
 public:
  virtual ~Route() = default;
};

/// Runs before each upstream attempt sends its head, the first and every retry: for a
/// filter whose change to the request must be fresh per attempt (a signature's nonce).
class UpstreamHook {
 public:
  virtual ~UpstreamHook() = default;
  /// `authority` is what the attempt sends as Host / :authority.
  virtual void onUpstreamAttempt(RequestHead& head, std::string_view authority) = 0;
};

/// Given to each filter of a stream. Valid from setCallbacks() until onDestroy().
class StreamCallbacks {
 public:
  virtual ~StreamCallbacks() = default;

  /// Resumes request iteration after this filter returned StopIteration.
  virtual void continueRequest() = 0;
  /// Resumes response iteration after this filter returned StopIteration.
  virtual void continueResponse() = 0;
  /// Ends the stream with a response made by Tether. `extra` headers are added; the
  /// x-tether-reason header is always set. Safe to call from any filter event or timer.
  virtual void sendLocalReply(int status, std::string_view body, Reason reason,
                              const HeaderMap* extra = nullptr) = 0;
  /// The snapshot this stream started with; it stays valid for the stream's whole life.
  virtual const Snapshot& snapshot() const = 0;
  /// The worker this stream runs on: its loop (timers), pools and counters.
  virtual Worker& worker() = 0;
  virtual StreamInfo& info() = 0;
  /// The request head as the filters left it (valid after the request headers event).
  virtual const RequestHead& request() const = 0;
  /// The stream's route (nullptr until the routing filter chose one).
  virtual const Route* route() const = 0;
  virtual void setRoute(const Route* route) = 0;
  /// Upstream hooks run in the order added; `hook` must live as long as the stream.
  virtual void addUpstreamHook(UpstreamHook& hook) = 0;
  /// Called by the terminal filter before each attempt's head goes upstream.
  virtual void runUpstreamHooks(RequestHead& head, std::string_view authority) = 0;

  // Used by the terminal filter (the router) to send the upstream's response back through
  // the filters, last to first, to the downstream codec.
  virtual void encodeHeaders(ResponseHead& head, bool endStream) = 0;
  virtual void encodeData(std::string& data, bool endStream) = 0;
  virtual void encodeTrailers(HeaderMap& trailers) = 0;
  /// Pauses/resumes reading the downstream request (flow control for a slow upstream).
  virtual void setRequestReadPaused(bool paused) = 0;
  /// Aborts the stream after the response has started (the downstream connection closes).
  virtual void resetStream() = 0;
  /// Turns the stream into a raw byte tunnel once the response headers are sent (Upgrade
  /// accepted with 101, or CONNECT established): later data has no HTTP framing.
  virtual void switchToTunnel() = 0;
};

/// One filter instance per stream. Events come in order: request headers, data*,
/// trailers?; response headers, data*, trailers?; onStreamComplete; onDestroy.
/// The pass-through defaults let a filter override only what it needs.
class Filter : public Pooled {
 public:
  virtual ~Filter() = default;

  virtual void setCallbacks(StreamCallbacks& cb) { callbacks_ = &cb; }

  virtual FilterStatus onRequestHeaders(RequestHead& head, bool endStream) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus onRequestData(std::string& data, bool endStream) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus onRequestTrailers(HeaderMap& trailers) { return FilterStatus::kContinue; }
  virtual FilterStatus onResponseHeaders(ResponseHead& head, bool endStream) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus onResponseData(std::string& data, bool endStream) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus onResponseTrailers(HeaderMap& trailers) { return FilterStatus::kContinue; }
  /// The downstream connection's write buffer passed its high (true) or low (false) mark.
  virtual void onResponseWatermark(bool aboveHigh) {}
  /// The stream is over (response complete, or reset); StreamInfo is final.
  virtual void onStreamComplete(const StreamInfo& info) {}
  /// Last call: release timers and upstream resources. No callbacks may be used after it.
  virtual void onDestroy() {}

 protected:
  StreamCallbacks* callbacks_ = nullptr;
};

/// Creates a filter for a new stream. Built once per snapshot, shared read-only across
/// workers, so a factory must be thread-safe (it normally just captures an immutable config).
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::unique_ptr<Filter> create() const = 0;
};

/// The factory of a filter `F` constructed from the same immutable arguments (a snapshot's
/// compiled rules, shared by reference) for every stream.
template <class F, class... Args>
class FactoryOf : public FilterFactory {
 public:
  explicit FactoryOf(Args... args) : args_(std::move(args)...) {}
  std::unique_ptr<Filter> create() const override {
    return std::apply([](const Args&... a) { return std::make_unique<F>(a...); }, args_);
  }

 private:
  std::tuple<Args...> args_;
};

}  // namespace tether::proxy
