#include "proxy/readiness_probe.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace tether::proxy {

namespace {

/// One probe: connect, write, read the status line, close. Owns itself; the timer and the
/// socket both close before it is freed.
struct Probe {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t connect;
  uv_write_t write;
  std::string request;
  std::string response;
  std::function<void(bool)> done;
  std::vector<std::pair<int, int>> expected;
  bool tcpOnly = false;
  int closesPending = 2;
  bool finished = false;

  void finish(bool ok) {
    if (finished) return;
    finished = true;
    auto cb = std::move(done);
    uv_timer_stop(&timer);
    auto onClose = [](uv_handle_t* h) {
      auto* p = static_cast<Probe*>(h->data);
      if (--p->closesPending == 0) delete p;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), onClose);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), onClose);
    cb(ok);
  }
};

}  // namespace

void probeHttp(uv_loop_t* loop, const config::Address& address, const std::string& path,
               std::chrono::milliseconds timeout, std::function<void(bool)> done,
               std::vector<std::pair<int, int>> expected) {
  auto* p = new Probe;
  p->done = std::move(done);
  p->expected = std::move(expected);
  p->tcpOnly = path.empty();
  p->request = "GET " + path + " HTTP/1.1\r\nhost: " + address.toString() +
               "\r\nuser-agent: tether-readiness\r\nconnection: close\r\n\r\n";
  uv_tcp_init(loop, &p->tcp);
  uv_timer_init(loop, &p->timer);
  p->tcp.data = p;
  p->timer.data = p;
  p->connect.data = p;
  p->write.data = p;
  uv_timer_start(
      &p->timer, [](uv_timer_t* t) { static_cast<Probe*>(t->data)->finish(false); },
      static_cast<uint64_t>(timeout.count()), 0);
  sockaddr_storage ss{};
  if (uv_ip4_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
    p->finish(false);
    return;
  }
  int rc = uv_tcp_connect(
      &p->connect, &p->tcp, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* req, int status) {
        auto* p = static_cast<Probe*>(req->data);
        if (p->finished) return;
        if (status != 0) {
          p->finish(false);
          return;
        }
        if (p->tcpOnly) {  // a TCP check: the connect was the question
          p->finish(true);
          return;
        }
        uv_buf_t b = uv_buf_init(p->request.data(), static_cast<unsigned>(p->request.size()));
        uv_write(&p->write, reinterpret_cast<uv_stream_t*>(&p->tcp), &b, 1,
                 [](uv_write_t*, int) {});
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(&p->tcp),
            [](uv_handle_t*, size_t, uv_buf_t* buf) {
              static thread_local char storage[4096];
              *buf = uv_buf_init(storage, sizeof(storage));
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
              auto* p = static_cast<Probe*>(s->data);
              if (p->finished) return;
              if (n < 0) {
                p->finish(false);
                return;
              }
              p->response.append(buf->base, static_cast<size_t>(n));
              if (p->response.size() >= 12) {
                // "HTTP/1.1 200": the status is bytes 9-11.
                const std::string& r = p->response;
                bool http = r.compare(0, 5, "HTTP/") == 0 && std::isdigit(r[9]) &&
                            std::isdigit(r[10]) && std::isdigit(r[11]);
                int code = http ? (r[9] - '0') * 100 + (r[10] - '0') * 10 + (r[11] - '0') : 0;
                bool ok = http && p->expected.empty() && code >= 200 && code < 300;
                for (const auto& [lo, hi] : p->expected) ok = ok || (code >= lo && code <= hi);
                p->finish(ok);
              }
            });
      });
  if (rc != 0) p->finish(false);
}

}  // namespace tether::proxy
