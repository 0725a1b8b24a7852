#include "proxy/upstream/health_probe.h"

#include <charconv>

#include "proxy/common/reason.h"
#include "proxy/common/timer.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

namespace {

constexpr std::string_view kUserAgent = "tether-health-check";
constexpr std::string_view kGrpcCheckPath = "/grpc.health.v1.Health/Check";
/// A HealthCheckResponse is a few bytes; anything past this is not one.
constexpr size_t kMaxGrpcBody = 4096;

/// The parts every probe shares: the timeout, the single report, and leaving the worker.
class ProbeJob : public WorkerJob {
 public:
  ProbeJob(Worker& worker, std::chrono::milliseconds timeout, std::function<void(ProbeResult)> done)
      : worker_(worker),
        timer_(worker.loop(),
               [this] {
                 finish({false, "timeout"});
               }),
        done_(std::move(done)) {
    timer_.start(timeout);
  }

  void abort() override {
    done_ = nullptr;
    finish({});
  }

 protected:
  /// Reports once; `cleanup` (close what is open) runs first.
  void finish(ProbeResult result) {
    if (finished_) return;
    finished_ = true;
    timer_.stop();
    cleanup();
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(result));
  }
  virtual void cleanup() = 0;

  Worker& worker_;
  Timer timer_;
  std::function<void(ProbeResult)> done_;
  bool finished_ = false;
};

/// A TCP check: the connect is the question; nothing is sent.
class TcpProbe final : public ProbeJob, public TcpConnection::Handler {
 public:
  TcpProbe(Worker& worker, const ProbeSpec& spec, std::function<void(ProbeResult)> done)
      : ProbeJob(worker, spec.timeout, std::move(done)), conn_(worker, *this) {}

  void start(const config::Address& address) {
    sockaddr_storage ss{};
    if (!toSockaddr(address, ss)) {
      finish({false, "not an IP address"});
      return;
    }
    int rc = conn_.connect(reinterpret_cast<const sockaddr*>(&ss));
    if (rc != 0) finish({false, std::string("connect failed: ") + uv_err_name(rc)});
  }

  void onConnected(int status) override {
    if (status == 0) {
      finish({true, ""});
    } else {
      finish({false, std::string("connect failed: ") + uv_err_name(status)});
    }
  }
  void onRead(const char*, size_t) override {}
  void onReadEnd(int) override {}
  void onClosed() override { worker_.jobDone(this); }

 private:
  void cleanup() override { conn_.close(); }  // onClosed frees the job

  TcpConnection conn_;
};

/// An HTTP or gRPC check: one exchange lent by the worker's pools, in the protocol the
/// service speaks, over TLS when it uses TLS.
class ExchangeProbe final : public ProbeJob, public UpstreamClient {
 public:
  ExchangeProbe(Worker& worker, ProbeSpec spec, std::function<void(ProbeResult)> done)
      : ProbeJob(worker, spec.timeout, std::move(done)), spec_(std::move(spec)) {}

  void start() {
    Lent how = Lent::kFailed;
    LendOptions options;
    options.connectTimeout = spec_.timeout;
    bool http2 = false;
    upstream_ =
        worker_.pools().lend(*this, spec_.address, spec_.key, spec_.protocol,
                             spec_.tls ? &*spec_.tls : nullptr, options, how, nullptr, &http2);
    if (grpc() && !http2) {
      // protocol: auto where ALPN chose HTTP/1.1: gRPC cannot be spoken there.
      finish({false, "the endpoint speaks HTTP/1.1; gRPC needs HTTP/2"});
      return;
    }
    switch (how) {
      case Lent::kReady:
        send();
        return;
      case Lent::kConnecting:
      case Lent::kQueued:
        return;  // onUpstreamReady or onUpstreamGranted follows
      case Lent::kOverflow:
      case Lent::kFailed:
        finish({false, "no connection could be made"});
        return;
    }
  }

  // UpstreamClient
  void onUpstreamReady() override { send(); }
  void onUpstreamFailure(Reason reason, bool reused) override {
    upstream_ = nullptr;
    // A pooled connection the endpoint had closed (the keep-alive race) says nothing about
    // its health: ask once more on a fresh one.
    if (reused && !retried_) {
      retried_ = true;
      start();
      return;
    }
    finish({false, std::string(reasonName(reason))});
  }
  void onUpstreamRefused() override {
    // Not processed at all (a GOAWAY, or ALPN chose HTTP/1.1 for protocol: auto).
    onUpstreamFailure(Reason::kUpstreamReset, true);
  }
  void onUpstreamHeaders(ResponseHead& head, bool endStream) override {
    status_ = head.status;
    if (const HeaderString* g = head.headers.get("grpc-status")) grpcStatus_ = *g;
    if (endStream) complete();
  }
  void onUpstreamData(std::string& data, bool endStream) override {
    if (grpc()) {
      if (body_.size() + data.size() <= kMaxGrpcBody) {
        body_ += data;
      } else {
        oversized_ = true;
      }
    }
    if (endStream) complete();
  }
  void onUpstreamTrailers(HeaderMap& trailers) override {
    if (const HeaderString* g = trailers.get("grpc-status")) grpcStatus_ = *g;
    complete();
  }
  void onUpstreamReset() override {
    upstream_ = nullptr;
    finish({false, "reset by the endpoint"});
  }
  void onUpstreamWatermark(bool) override {}
  void onUpstreamGranted(UpstreamRequest& request, Lent how) override {
    upstream_ = &request;
    if (how == Lent::kReady) send();
  }

 private:
  bool grpc() const { return spec_.type == config::HealthCheckType::kGrpc; }

  void send() {
    if (!upstream_) return;
    RequestHead head;
    head.method = grpc() ? "POST" : "GET";
    head.path = grpc() ? std::string(kGrpcCheckPath) : spec_.path;
    head.authority = spec_.authority;
    head.headers.add("user-agent", kUserAgent);
    if (!grpc()) {
      upstream_->sendHead(head, spec_.authority, RequestExtras{}, true);
      return;
    }
    std::string body = grpcHealthRequest(spec_.grpcService);
    head.headers.add("content-type", "application/grpc");
    char length[24];
    auto [end, ec] = std::to_chars(length, length + sizeof(length), body.size());
    head.headers.add("content-length", std::string_view(length, end - length));
    UpstreamRequest* exchange = upstream_;
    exchange->sendHead(head, spec_.authority, RequestExtras{}, false);
    if (upstream_ == exchange) exchange->sendData(body, true);
  }

  void complete() {
    UpstreamRequest* exchange = upstream_;
    upstream_ = nullptr;
    if (exchange) exchange->release(true);
    finish(verdict());
  }

  ProbeResult verdict() const {
    std::string status = "status " + std::to_string(status_);
    if (!grpc()) {
      bool pass = spec_.expectedStatuses.empty() ? status_ >= 200 && status_ < 300 : false;
      for (const auto& [lo, hi] : spec_.expectedStatuses) pass |= status_ >= lo && status_ <= hi;
      return {pass, pass ? "" : status};
    }
    if (status_ != 200) return {false, status};
    if (grpcStatus_ != "0") {
      return {false, grpcStatus_.empty() ? "no grpc-status" : "grpc-status " + grpcStatus_};
    }
    int serving = oversized_ ? -1 : grpcHealthStatus(body_);
    switch (serving) {
      case 1:
        return {true, ""};
      case 0:
        return {false, "UNKNOWN"};
      case 2:
        return {false, "NOT_SERVING"};
      case 3:
        return {false, "SERVICE_UNKNOWN"};
      default:
        return {false, "malformed HealthCheckResponse"};
    }
  }

  void cleanup() override {
    if (upstream_) upstream_->close();  // aborts the exchange: no callback follows
    upstream_ = nullptr;
    worker_.jobDone(this);
  }

  ProbeSpec spec_;
  UpstreamRequest* upstream_ = nullptr;
  int status_ = 0;
  std::string grpcStatus_;
  std::string body_;
  bool oversized_ = false;
  bool retried_ = false;
};

/// Reads a protobuf varint at `p`; false when it runs past `end` or over 64 bits.
bool readVarint(const unsigned char*& p, const unsigned char* end, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    unsigned char b = *p++;
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string grpcHealthRequest(std::string_view service) {
  // HealthCheckRequest { string service = 1; }: omitted when empty (proto3 default).
  std::string message;
  if (!service.empty()) {
    message += '\x0a';
    uint64_t n = service.size();
    while (n >= 0x80) {
      message += static_cast<char>((n & 0x7f) | 0x80);
      n >>= 7;
    }
    message += static_cast<char>(n);
    message += service;
  }
  std::string framed(5, '\0');
  uint32_t len = static_cast<uint32_t>(message.size());
  for (int i = 0; i < 4; ++i) framed[1 + i] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
  return framed + message;
}

int grpcHealthStatus(std::string_view body) {
  if (body.size() < 5 || body[0] != 0) return -1;  // no message, or a compressed one
  auto* p = reinterpret_cast<const unsigned char*>(body.data());
  uint32_t len = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | p[4];
  if (len != body.size() - 5) return -1;
  const unsigned char* end = p + body.size();
  p += 5;
  int status = 0;  // proto3: an absent field is UNKNOWN
  while (p < end) {
    uint64_t tag = 0, value = 0;
    if (!readVarint(p, end, tag)) return -1;
    switch (tag & 7) {
      case 0:  // varint
        if (!readVarint(p, end, value)) return -1;
        if (tag >> 3 == 1) status = value <= 3 ? static_cast<int>(value) : 0;
        break;
      case 1:  // 64-bit
        if (end - p < 8) return -1;
        p += 8;
        break;
      case 2:  // length-delimited
        if (!readVarint(p, end, value) || value > static_cast<uint64_t>(end - p)) return -1;
        p += value;
        break;
      case 5:  // 32-bit
        if (end - p < 4) return -1;
        p += 4;
        break;
      default:
        return -1;
    }
  }
  return status;
}

void runProbe(Worker& worker, ProbeSpec spec, std::function<void(ProbeResult)> done) {
  if (spec.type == config::HealthCheckType::kTcp) {
    auto probe = std::make_unique<TcpProbe>(worker, spec, std::move(done));
    TcpProbe* p = probe.get();
    worker.adopt(std::move(probe));
    p->start(spec.address);
    return;
  }
  auto probe = std::make_unique<ExchangeProbe>(worker, std::move(spec), std::move(done));
  ExchangeProbe* p = probe.get();
  worker.adopt(std::move(probe));
  p->start();
}

}  // namespace tether::proxy
