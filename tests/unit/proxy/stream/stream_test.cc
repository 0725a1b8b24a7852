// The filter chain (proxy/stream/filter.h, proxy/stream/stream.cc) driven by hand: iteration order,
// StopIteration with an asynchronous resume on the worker's loop, buffering while held,
// local replies, and response-side iteration.

#include "proxy/stream/stream.h"

#include <catch2/catch.hpp>

#include "proxy/common/timer.h"
#include "proxy/network/tls.h"

using namespace tether;
using namespace tether::proxy;

namespace {

struct Log {
  std::vector<std::string> events;
  void add(std::string e) { events.push_back(std::move(e)); }
};

/// Records what the downstream codec would write.
struct FakeEncoder : ResponseEncoder {
  Log& log;
  int status = 0;
  HeaderMap headers;
  std::string body;
  bool complete = false;
  explicit FakeEncoder(Log& l) : log(l) {}
  void encodeHeaders(ResponseHead& head, bool end) override {
    status = head.status;
    headers = head.headers;
    log.add("encoder:headers" + std::string(end ? ":end" : ""));
  }
  void encodeData(std::string_view data, bool end) override {
    body += data;
    log.add("encoder:data" + std::string(end ? ":end" : ""));
  }
  void encodeTrailers(const HeaderMap&) override { log.add("encoder:trailers"); }
  void readDisable(bool d) override { log.add(d ? "encoder:pause" : "encoder:resume"); }
  void resetFromStream() override { log.add("encoder:reset"); }
  void enterTunnel() override {}
  void onStreamComplete() override { complete = true; }
};

/// Holds request headers until a timer on the worker's loop fires, then resumes.
struct AsyncFilter : Filter {
  Log& log;
  std::unique_ptr<Timer> timer;
  explicit AsyncFilter(Log& l) : log(l) {}
  FilterStatus onRequestHeaders(RequestHead& head, bool) override {
    log.add("async:headers");
    timer = std::make_unique<Timer>(callbacks_->worker().loop(), [this] {
      log.add("async:resume");
      callbacks_->continueRequest();
    });
    timer->start(std::chrono::milliseconds(5));
    return FilterStatus::kStopIteration;
  }
  FilterStatus onRequestData(std::string& d, bool end) override {
    log.add("async:data:" + d + (end ? ":end" : ""));
    return FilterStatus::kContinue;
  }
  FilterStatus onResponseHeaders(ResponseHead& head, bool) override {
    head.headers.add("x-async", "seen");
    log.add("async:response");
    return FilterStatus::kContinue;
  }
  void onDestroy() override { timer.reset(); }
};

/// Adds a header, or answers locally when asked to.
struct GateFilter : Filter {
  Log& log;
  explicit GateFilter(Log& l) : log(l) {}
  FilterStatus onRequestHeaders(RequestHead& head, bool) override {
    log.add("gate:headers");
    if (head.headers.get("x-deny")) {
      callbacks_->sendLocalReply(403, "no\n", Reason::kForbidden);
      return FilterStatus::kStopIteration;
    }
    head.headers.add("x-gate", "passed");
    return FilterStatus::kContinue;
  }
  void onStreamComplete(const StreamInfo& info) override {
    log.add("gate:complete:" + std::to_string(info.status) + ":" +
            std::string(reasonName(info.reason)));
  }
};

/// The terminal filter: echoes the request body once it has all of it.
struct EchoFilter : Filter {
  Log& log;
  std::string body;
  explicit EchoFilter(Log& l) : log(l) {}
  FilterStatus onRequestHeaders(RequestHead& head, bool) override {
    log.add("echo:headers:" + std::string(*head.headers.get("x-gate")));
    return FilterStatus::kStopIteration;
  }
  FilterStatus onRequestData(std::string& d, bool end) override {
    body += d;
    if (end) {
      ResponseHead r;
      r.status = 200;
      callbacks_->encodeHeaders(r, false);
      callbacks_->encodeData(body, true);
    }
    return FilterStatus::kStopIteration;
  }
};

template <typename F>
struct Factory : FilterFactory {
  Log& log;
  explicit Factory(Log& l) : log(l) {}
  std::unique_ptr<Filter> create() const override { return std::make_unique<F>(log); }
};

struct Fixture {
  Log log;
  config::Bootstrap bootstrap;
  TlsRegistry tls;
  std::unique_ptr<Worker> worker;
  SnapshotPtr snapshot;

  Fixture() {
    auto cfg = std::make_shared<config::Config>();
    auto snap = std::make_shared<Snapshot>(cfg, 1);
    for (auto d : {config::Direction::kOutbound}) {
      snap->addFilter(d, std::make_shared<Factory<AsyncFilter>>(log));
      snap->addFilter(d, std::make_shared<Factory<GateFilter>>(log));
      snap->addFilter(d, std::make_shared<Factory<EchoFilter>>(log));
    }
    snapshot = snap;
    worker = std::make_unique<Worker>(0, bootstrap, snapshot, std::vector<ListenerSocket>{}, tls);
  }
  ~Fixture() {
    worker->stop();
    worker->runLoop();  // closes the loop; uv_loop_close must succeed (logged otherwise)
  }
  void runUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) uv_run(worker->loop(), UV_RUN_ONCE);
  }
};

RequestHead request(bool deny = false) {
  RequestHead h;
  h.method = "POST";
  h.path = "/";
  h.authority = "svc";
  if (deny) h.headers.add("x-deny", "1");
  return h;
}

}  // namespace

TEST_CASE(
    "a filter holds the request, sees the data as it arrives, the rest wait; a timer resumes it",
    "[stream]") {
  Fixture f;
  FakeEncoder enc(f.log);
  auto stream = std::make_unique<ActiveStream>(*f.worker, f.snapshot, enc, StreamInfo{});
  stream->decodeHeaders(request(), false);
  std::string a = "abc", b = "def";
  stream->decodeData(a, false);
  stream->decodeData(b, true);
  // The holding filter sees the body (to hash or check it); nothing passed it yet.
  CHECK(f.log.events ==
        std::vector<std::string>{"async:headers", "async:data:abc", "async:data:def:end"});
  f.runUntil([&] { return enc.complete; });
  // Resumed, the filters after it get the buffered body once; the holder not again.
  CHECK(f.log.events == std::vector<std::string>{
                            "async:headers", "async:data:abc", "async:data:def:end", "async:resume",
                            "gate:headers", "echo:headers:passed", "async:response",
                            "encoder:headers", "encoder:data:end", "gate:complete:200:"});
  CHECK(enc.status == 200);
  CHECK(enc.body == "abcdef");
  CHECK(*enc.headers.get("x-async") == "seen");
}

TEST_CASE("a local reply ends the stream and passes the response filters", "[stream]") {
  Fixture f;
  FakeEncoder enc(f.log);
  auto stream = std::make_unique<ActiveStream>(*f.worker, f.snapshot, enc, StreamInfo{});
  stream->decodeHeaders(request(true), true);
  f.runUntil([&] { return enc.complete; });
  CHECK(enc.status == 403);
  CHECK(*enc.headers.get("x-tether-reason") == "forbidden");
  CHECK(*enc.headers.get("x-async") == "seen");
  CHECK(enc.body == "no\n");
  // The terminal filter never saw the request.
  for (const auto& e : f.log.events) CHECK(e.rfind("echo:", 0) != 0);
  CHECK(f.log.events.back() == "gate:complete:403:forbidden");
}

TEST_CASE("a large body held by a stopped filter pauses the downstream", "[stream]") {
  Fixture f;
  FakeEncoder enc(f.log);
  auto stream = std::make_unique<ActiveStream>(*f.worker, f.snapshot, enc, StreamInfo{});
  stream->decodeHeaders(request(), false);
  std::string chunk(600 * 1024, 'x');
  stream->decodeData(chunk, false);
  stream->decodeData(chunk, true);  // 1.2 MiB > the 1 MiB high watermark
  CHECK(std::count(f.log.events.begin(), f.log.events.end(), "encoder:pause") == 1);
  f.runUntil([&] { return enc.complete; });
  CHECK(std::count(f.log.events.begin(), f.log.events.end(), "encoder:resume") == 1);
  CHECK(enc.body.size() == 1200 * 1024);
}
