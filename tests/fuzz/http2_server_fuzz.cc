// A downstream connection fed raw bytes through a real socket: protocol detection, the
// HTTP/2 server session (nghttp2, Tether's frame checks, its callbacks and flow control)
// and, when detection says so, the HTTP/1.1 server codec. Every stream runs a real filter
// chain whose last filter is a fake upstream that answers the way the request's path asks
// (echo as the body arrives, answer at once, answer locally, hold the stream, pause the
// request, send a body larger than the client's window). A fresh worker per input: nothing
// carries over from one input to the next.
//
// Input: one flags byte, then the client's bytes.
//   bit 0     the listener detects the protocol (else it is fixed to HTTP/2)
//   bit 1     the client half-closes after its last byte
//   bits 2-7  how the bytes are cut into socket writes: 0 all at once, else pieces of
//             n*n bytes (at least 1/256th of the input)

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/bootstrap.h"
#include "config/config.h"
#include "proxy/stream/snapshot.h"
#include "tests/fuzz/connection_harness.h"

using namespace tether;
using namespace tether::proxy;

namespace {

/// The fake upstream, chosen by the path's first character after '/'.
class FakeUpstreamFilter : public Filter {
 public:
  FilterStatus onRequestHeaders(RequestHead& head, bool endStream) override {
    mode_ = head.path.size() > 1 ? head.path[1] : 'd';
    switch (mode_) {
      case 'l':  // a local reply before the body
        callbacks_->sendLocalReply(429, "slow down\n", Reason::kRateLimited);
        return FilterStatus::kStopIteration;
      case 'e':  // echo: the head now, the body as it comes
      case 'b': {
        ResponseHead r;
        r.headers.add("content-type", "application/octet-stream");
        callbacks_->encodeHeaders(r, false);
        started_ = true;
        if (mode_ == 'b') {  // more than the client's initial window
          std::string big(200 * 1024, 'b');
          callbacks_->encodeData(big, false);
        }
        break;
      }
      case 'p':  // the upstream is slow: reading the request pauses for good
        callbacks_->setRequestReadPaused(true);
        break;
      default:
        break;
    }
    if (endStream) finish();
    return FilterStatus::kStopIteration;
  }
  FilterStatus onRequestData(std::string& data, bool endStream) override {
    if (started_) {
      callbacks_->encodeData(data, false);
    } else {
      received_ += data.size();
    }
    if (endStream) finish();
    return FilterStatus::kStopIteration;
  }
  FilterStatus onRequestTrailers(HeaderMap& trailers) override {
    finish(&trailers);
    return FilterStatus::kStopIteration;
  }

 private:
  /// The request is complete: end the response (or leave it hanging, for 'h' and 'p').
  void finish(HeaderMap* trailers = nullptr) {
    if (mode_ == 'h' || mode_ == 'p' || mode_ == 'l') return;
    if (mode_ == 'r') {  // the upstream went away mid-answer
      ResponseHead r;
      callbacks_->encodeHeaders(r, false);
      callbacks_->resetStream();
      return;
    }
    if (!started_) {
      ResponseHead r;
      r.headers.add("x-received", std::to_string(received_));
      callbacks_->encodeHeaders(r, false);
    }
    if (trailers != nullptr) {
      std::string none;
      callbacks_->encodeData(none, false);
      HeaderMap copy = *trailers;
      copy.add("grpc-status", "0");
      callbacks_->encodeTrailers(copy);
      return;
    }
    std::string tail = "done\n";
    callbacks_->encodeData(tail, true);
  }

  char mode_ = 'd';
  bool started_ = false;
  size_t received_ = 0;
};

struct FakeUpstreamFactory : FilterFactory {
  std::unique_ptr<Filter> create() const override { return std::make_unique<FakeUpstreamFilter>(); }
};

struct Env {
  config::Bootstrap bootstrap;
  config::ListenerConfig detecting;
  config::ListenerConfig http2;
  SnapshotPtr snapshot;

  Env() {
    detecting.name = "fuzz-auto";
    http2.name = "fuzz-h2";
    http2.protocol = config::ListenerProtocol::kHttp2;
    auto snap = std::make_shared<Snapshot>(std::make_shared<config::Config>(), 1);
    for (auto d : {config::Direction::kInbound, config::Direction::kOutbound}) {
      snap->addFilter(d, std::make_shared<FakeUpstreamFactory>());
    }
    snapshot = snap;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  if (size == 0) return 0;
  uint8_t flags = data[0];
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t piece = (flags >> 2) * (flags >> 2);
  piece = piece == 0 ? bytes.size() : std::max(piece, bytes.size() / 256 + 1);

  tether::fuzz::ConnectionHarness h(env.bootstrap, env.snapshot,
                                    (flags & 1) ? env.detecting : env.http2);
  if (!h.ok()) return 0;
  h.write(bytes, piece, [&] {
    h.turn();
    h.turn();  // what the first turn queued for after the poll
  });
  if (flags & 2) h.shutdownWrite();
  for (int i = 0; i < 3; ++i) h.turn();
  return 0;
}
