#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "proxy/stream/filter.h"
#include "proxy/stream/snapshot.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

/// What a stream needs from the downstream codec that carries it (HTTP/1.1 today; the
/// HTTP/2 codec implements the same interface).
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;
  virtual void encodeHeaders(ResponseHead& head, bool endStream) = 0;
  virtual void encodeData(std::string_view data, bool endStream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  /// Counted pause/resume of reading this stream's request body.
  virtual void readDisable(bool disable) = 0;
  /// The stream failed after its response started: the codec must abort it.
  virtual void resetFromStream() = 0;
  /// After the response head: bytes now flow unframed in both directions.
  virtual void enterTunnel() = 0;
  /// The response is complete (or the stream was reset); the codec may destroy the stream.
  virtual void onStreamComplete() = 0;
};

/// One request/response exchange and its filter chain. Owned by the downstream codec;
/// destroyed (deferred) after onStreamComplete.
class ActiveStream : public StreamCallbacks, public Deletable, public Pooled {
 public:
  ActiveStream(Worker& worker, SnapshotPtr snapshot, ResponseEncoder& encoder, StreamInfo info);
  ~ActiveStream() override;

  // Events from the downstream codec, in order.
  void decodeHeaders(RequestHead head, bool endStream);
  void decodeData(std::string& data, bool endStream);
  void decodeTrailers(HeaderMap trailers);
  /// The downstream connection's write buffer crossed a watermark.
  void onDownstreamWatermark(bool aboveHigh);
  /// The downstream went away or the codec gave up on the stream: end it quietly.
  void onDownstreamReset();
  bool requestComplete() const { return requestComplete_; }
  bool responseComplete() const { return responseComplete_; }
  bool responseStarted() const { return responseStarted_; }

  // StreamCallbacks.
  void continueRequest() override;
  void continueResponse() override;
  void sendLocalReply(int status, std::string_view body, Reason reason,
                      const HeaderMap* extra) override;
  const Snapshot& snapshot() const override { return *snapshot_; }
  Worker& worker() override { return worker_; }
  StreamInfo& info() override { return info_; }
  const RequestHead& request() const override { return request_; }
  const Route* route() const override { return route_; }
  void setRoute(const Route* route) override { route_ = route; }
  void addUpstreamHook(UpstreamHook& hook) override;
  void runUpstreamHooks(RequestHead& head, std::string_view authority) override;
  void encodeHeaders(ResponseHead& head, bool endStream) override;
  void encodeData(std::string& data, bool endStream) override;
  void encodeTrailers(HeaderMap& trailers) override;
  void setRequestReadPaused(bool paused) override;
  void resetStream() override;
  void switchToTunnel() override;

 private:
  /// Per-filter callbacks would be needed for per-filter resume; a single index suffices
  /// because only one filter can hold an iteration at a time.
  /// http.headersWithUnderscores: drops (or refuses) header fields named with `_`; false
  /// when the request was answered.
  bool applyUnderscorePolicy();
  void runRequestHeaders(size_t from);
  /// Runs filters [from, to) on request data / trailers.
  void runRequestData(std::string& data, bool endStream, size_t from, size_t to);
  void runRequestTrailers(size_t from, size_t to);
  void runResponseHeaders(size_t from);
  void runResponseData(std::string& data, bool endStream);
  void runResponseTrailers();
  void finishStream();

  Worker& worker_;
  SnapshotPtr snapshot_;
  ResponseEncoder& encoder_;
  StreamInfo info_;
  std::vector<std::unique_ptr<Filter>, PoolAllocator<std::unique_ptr<Filter>>> filters_;
  RequestHead request_;
  ResponseHead response_;
  const Route* route_ = nullptr;
  std::array<UpstreamHook*, 2> hooks_{};
  size_t hookCount_ = 0;
  bool requestEnd_ = false;         // end of stream seen on the request side
  bool requestHeadersEnd_ = false;  // the request had no body
  bool requestComplete_ = false;    // the codec has delivered the whole request
  bool requestStopped_ = false;     // a filter holds request iteration at headers
  size_t requestStoppedAt_ = 0;
  std::string pendingRequestData_;
  bool pendingRequestEnd_ = false;
  HeaderMap pendingRequestTrailers_;
  bool hasPendingRequestTrailers_ = false;
  bool requestReadPausedForBuffer_ = false;
  bool responseStopped_ = false;
  size_t responseStoppedAt_ = 0;
  bool responseHeadersEnd_ = false;
  std::string pendingResponseData_;
  bool pendingResponseEnd_ = false;
  HeaderMap pendingResponseTrailers_;
  bool hasPendingResponseTrailers_ = false;
  bool responseStarted_ = false;
  bool responseComplete_ = false;
  bool finished_ = false;
  int requestPausedByFilters_ = 0;
};

}  // namespace tether::proxy
