#include "proxy/worker/access_log.h"

#include "proxy/common/log.h"

namespace tether::proxy {

struct AccessLogWriter::Write {
  uv_fs_t req;
  std::string data;
  std::weak_ptr<bool> alive;
  AccessLogWriter* owner;
};

AccessLogWriter::AccessLogWriter(uv_loop_t* loop, int fd)
    : loop_(loop), fd_(fd), alive_(std::make_shared<bool>(true)) {
  buffer_.reserve(kFlushAt * 2);
  // Lines reach the file within 100 ms even when traffic is light.
  timer_ = std::make_unique<Timer>(loop_, [this] { flush(); });
  timer_->start(std::chrono::milliseconds(100), std::chrono::milliseconds(100));
}

AccessLogWriter::~AccessLogWriter() {
  timer_.reset();
  // A write still in flight finishes in the threadpool; its callback sees alive_ expired
  // and only frees the request. What is left in the buffer is written synchronously: the
  // worker is stopping and nothing else waits on it.
  alive_.reset();
  if (!buffer_.empty()) {
    uv_fs_t req;
    uv_buf_t b = uv_buf_init(buffer_.data(), static_cast<unsigned>(buffer_.size()));
    int written = uv_fs_write(nullptr, &req, fd_, &b, 1, -1, nullptr);
    uv_fs_req_cleanup(&req);
    if (written < static_cast<int>(buffer_.size())) {
      TETHER_LOG(kWarn, "access log: the last " + std::to_string(buffer_.size()) +
                            " bytes could not all be written at exit" +
                            (written < 0 ? std::string(": ") + uv_strerror(written) : ""));
    }
  }
}

void AccessLogWriter::append(std::string_view line) {
  if (buffer_.size() + line.size() + 1 > kMaxBuffered) {
    ++dropped_;
    return;
  }
  buffer_.append(line);
  buffer_ += '\n';
  ++lines_;
  if (buffer_.size() >= kFlushAt) flush();
}

void AccessLogWriter::flush() {
  if (inflight_ || buffer_.empty()) return;
  auto* w = new Write{{}, std::move(buffer_), alive_, this};
  buffer_.clear();
  buffer_.reserve(kFlushAt * 2);
  w->req.data = w;
  inflight_ = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_fs_write(loop_, &w->req, fd_, &b, 1, -1, [](uv_fs_t* req) {
    auto* w = static_cast<Write*>(req->data);
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    if (auto alive = w->alive.lock()) w->owner->onWriteDone(result);
    delete w;
  });
  if (rc != 0) {
    inflight_ = nullptr;
    delete w;
  }
}

void AccessLogWriter::onWriteDone(ssize_t result) {
  inflight_ = nullptr;
  (void)result;  // a failed write loses its lines; the log must never stop the proxy
  if (buffer_.size() >= kFlushAt) flush();
}

}  // namespace tether::proxy
