#include "proxy/server/admin.h"

#include <unistd.h>

#include <set>
#include <vector>

#include "proxy/codec/http1_parser.h"
#include "proxy/common/reason.h"

namespace tether::proxy {

namespace {

class AdminConnection;

}  // namespace

/// What the server and its open connections share: the handler, and the connections, so
/// that closing the server closes them too (an idle one would otherwise keep the control
/// loop, and the process, alive after SIGTERM).
struct AdminServer::Shared {
  AdminHandler handler;
  std::set<AdminConnection*> open;
};

namespace {

/// A client that has not finished its request in this time is closed (slowloris, a scraper
/// that hung).
constexpr uint64_t kAdminRequestTimeoutMs = 10'000;

/// One admin connection: parse one request, answer, close.
class AdminConnection : public Http1Parser::Callbacks {
 public:
  AdminConnection(uv_loop_t* loop, std::shared_ptr<AdminServer::Shared> shared)
      : shared_(std::move(shared)),
        parser_(Http1Parser::Type::kRequest, *this, Http1Limits{16384, 64}),
        alive_(std::make_shared<bool>(true)) {
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<AdminConnection*>(t->data)->close(); },
        kAdminRequestTimeoutMs, 0);
    shared_->open.insert(this);
  }

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  void start() {
    uv_read_start(
        stream(),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static thread_local char storage[16384];
          *buf = uv_buf_init(storage, sizeof(storage));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          static_cast<AdminConnection*>(s->data)->onRead(n, buf);
        });
  }

  void onRead(ssize_t n, const uv_buf_t* buf) {
    if (n < 0) {
      close();
      return;
    }
    if (answered_) return;
    Http1Parser::Result r = parser_.execute(buf->base, static_cast<size_t>(n));
    if (r.status == Http1Parser::Status::kError && !answered_) {
      AdminResponse resp;
      resp.status = defaultStatus(parser_.errorReason());
      resp.body = parser_.errorMessage() + "\n";
      respond(std::move(resp));
    }
  }

  int onHeadersComplete(Http1Message& m) override {
    request_.method = m.method;
    size_t q = m.url.find('?');
    request_.path = m.url.substr(0, q);
    if (q != std::string::npos) request_.query = m.url.substr(q + 1);
    return 0;
  }
  int onBody(const char*, size_t) override { return 0; }
  int onMessageComplete(HeaderMap&) override {
    if (answered_) return HPE_PAUSED;
    answered_ = true;
    uv_read_stop(stream());
    std::weak_ptr<bool> alive = alive_;
    uv_timer_stop(&timer_);  // answered at our pace from here
    shared_->handler(request_, [this, alive](AdminResponse resp) {
      if (alive.expired()) return;  // the client left before the answer was ready
      respond(std::move(resp));
    });
    return HPE_PAUSED;
  }

  void respond(AdminResponse resp) {
    answered_ = true;
    auto* w = new Write;
    w->data = "HTTP/1.1 " + std::to_string(resp.status) + " " +
              std::string(statusText(resp.status)) + "\r\ncontent-type: " + resp.contentType +
              "\r\ncontent-length: " + std::to_string(resp.body.size()) +
              "\r\nconnection: close\r\n\r\n" + resp.body;
    w->conn = this;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, stream(), &b, 1, [](uv_write_t* req, int) {
          auto* w = reinterpret_cast<Write*>(req);
          AdminConnection* c = w->conn;
          delete w;
          c->close();
        }) != 0) {
      delete w;
      close();
    }
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    alive_.reset();
    shared_->open.erase(this);
    auto closed = [](uv_handle_t* h) {
      auto* c = static_cast<AdminConnection*>(h->data);
      if (--c->closesPending_ == 0) delete c;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closed);
  }

 private:
  struct Write {
    uv_write_t req;
    std::string data;
    AdminConnection* conn;
  };

  std::shared_ptr<AdminServer::Shared> shared_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  int closesPending_ = 2;
  Http1Parser parser_;
  AdminRequest request_;
  std::shared_ptr<bool> alive_;
  bool answered_ = false;
  bool closing_ = false;
};

}  // namespace

AdminServer::AdminServer(uv_loop_t* loop, AdminHandler handler,
                         std::function<void(int err)> onPause)
    : loop_(loop),
      shared_(std::make_shared<Shared>(Shared{std::move(handler), {}})),
      onPause_(std::move(onPause)) {}

AdminServer::~AdminServer() { close(); }

int AdminServer::listen(config::Address& address) {
  int fd = openListeningSocket(address, 128, false);
  if (fd < 0) return fd;
  acceptor_ = std::make_unique<Acceptor>(
      loop_, fd, "admin",
      [this](int fd) {
        auto* conn = new AdminConnection(loop_, shared_);
        if (uv_tcp_open(reinterpret_cast<uv_tcp_t*>(conn->stream()), fd) != 0) {
          ::close(fd);
          conn->close();
          return;
        }
        conn->start();
      },
      onPause_, true);
  return 0;
}

void AdminServer::close() {
  acceptor_.reset();
  std::vector<AdminConnection*> open(shared_->open.begin(), shared_->open.end());
  for (auto* c : open) c->close();
}

}  // namespace tether::proxy
