#include "tests/fakes/fake_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

namespace tether::test {

namespace {

std::string hex(const unsigned char* d, unsigned n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += k[d[i] >> 4];
    s += k[d[i] & 15];
  }
  return s;
}

struct Sha {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Sha() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Sha() { EVP_MD_CTX_free(ctx); }
  void update(const char* d, size_t n) { EVP_DigestUpdate(ctx, d, n); }
  std::string final() {
    unsigned char out[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, out, &len);
    return hex(out, len);
  }
};

/// Buffered blocking reader over a socket that counts every byte.
class Reader {
 public:
  Reader(int fd, std::atomic<uint64_t>& counter) : fd_(fd), counter_(counter) {}

  bool slow = false;  // sleep before each read: a slow reader

  bool fill() {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    counter_ += static_cast<uint64_t>(n);
    data_.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool readLine(std::string& line) {
    for (;;) {
      size_t nl = data_.find("\r\n", pos_);
      if (nl != std::string::npos) {
        line = data_.substr(pos_, nl - pos_);
        pos_ = nl + 2;
        compact();
        return true;
      }
      if (data_.size() - pos_ > 1 << 20 || !fill()) return false;
    }
  }
  bool read(size_t n, std::string* out, Sha* sha) {
    while (n > 0) {
      if (pos_ == data_.size() && !fill()) return false;
      size_t take = std::min(n, data_.size() - pos_);
      if (out && out->size() < 65536) out->append(data_, pos_, std::min(take, 65536 - out->size()));
      if (sha) sha->update(data_.data() + pos_, take);
      pos_ += take;
      n -= take;
      compact();
    }
    return true;
  }
  std::string rest() {
    std::string r = data_.substr(pos_);
    data_.clear();
    pos_ = 0;
    return r;
  }

 private:
  void compact() {
    if (pos_ > 65536) {
      data_.erase(0, pos_);
      pos_ = 0;
    }
  }
  int fd_;
  std::atomic<uint64_t>& counter_;
  std::string data_;
  size_t pos_ = 0;
};

bool sendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string response(int status, const std::string& body,
                     const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(status) +
                  " X\r\ncontent-length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : extra) r += k + ": " + v + "\r\n";
  return r + "\r\n" + body;
}

}  // namespace

const std::string* RecordedRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string sha256Hex(const std::string& data) {
  Sha s;
  s.update(data.data(), data.size());
  return s.final();
}

FakeUpstream::FakeUpstream(const char* ip, uint16_t port) {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  a.sin_port = htons(port);
  ::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(listenFd_, 512);
  socklen_t len = sizeof(a);
  getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptThread_ = std::thread([this] { acceptLoop(); });
}

FakeUpstream::~FakeUpstream() {
  stopping_ = true;
  ::shutdown(listenFd_, SHUT_RDWR);
  acceptThread_.join();
  ::close(listenFd_);
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : openFds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
}

void FakeUpstream::acceptLoop() {
  while (!stopping_) {
    pollfd p{listenFd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    connections_++;
    std::lock_guard<std::mutex> l(mu_);
    openFds_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

size_t FakeUpstream::record(const RecordedRequest& r) {
  std::lock_guard<std::mutex> l(mu_);
  requests_.push_back(r);
  return requests_.size() - 1;
}

void FakeUpstream::update(size_t index, const RecordedRequest& r) {
  std::lock_guard<std::mutex> l(mu_);
  if (index < requests_.size()) requests_[index] = r;
}

size_t FakeUpstream::requestCount() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_.size();
}

RecordedRequest FakeUpstream::lastRequest() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_.empty() ? RecordedRequest{} : requests_.back();
}

std::vector<RecordedRequest> FakeUpstream::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

void FakeUpstream::clear() {
  std::lock_guard<std::mutex> l(mu_);
  requests_.clear();
}

void FakeUpstream::serve(int fd) {
  Reader in(fd, bytes_);
  bool dropNext = false;
  for (;;) {
    std::string line;
    if (!in.readLine(line)) break;
    if (dropNext) break;  // the keep-alive race: close as the next request arrives
    RecordedRequest req;
    size_t s1 = line.find(' '), s2 = line.rfind(' ');
    if (s1 == std::string::npos || s2 == s1) break;
    req.method = line.substr(0, s1);
    req.target = line.substr(s1 + 1, s2 - s1 - 1);
    req.version = line.substr(s2 + 1);
    int64_t contentLength = 0;
    bool chunked = false;
    while (in.readLine(line) && !line.empty()) {
      size_t colon = line.find(':');
      std::string name = lower(line.substr(0, colon));
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      if (name == "content-length") contentLength = std::stoll(value);
      if (name == "transfer-encoding" && lower(value) == "chunked") chunked = true;
      req.headers.emplace_back(name, value);
    }
    // Recorded as soon as the head is in, so a test can see a request whose body never comes.
    size_t index = record(req);
    in.slow = req.target == "/slow-sha256";
    Sha sha;
    bool ok = true;
    if (chunked) {
      for (;;) {
        if (!in.readLine(line)) {
          ok = false;
          break;
        }
        size_t n = std::stoul(line, nullptr, 16);
        if (n == 0) {
          while (in.readLine(line) && !line.empty()) {
          }
          break;
        }
        if (!in.read(n, &req.body, &sha)) {
          ok = false;
          break;
        }
        req.bodyLength += n;
        in.readLine(line);
      }
    } else if (contentLength > 0) {
      ok = in.read(static_cast<size_t>(contentLength), &req.body, &sha);
      req.bodyLength = static_cast<uint64_t>(contentLength);
    }
    if (!ok) break;
    req.bodySha256 = sha.final();
    std::string target = req.target;
    std::string path = target.substr(0, target.find('?'));
    bool head = req.method == "HEAD";
    const std::string* upgrade = req.header("upgrade");
    update(index, req);

    auto numberAfter = [&](const std::string& prefix) -> uint64_t {
      return std::stoull(path.substr(prefix.size()));
    };
    std::string out;
    if (int forced = forcedStatus_.load()) {
      out = response(forced, "forced\n");
    } else if (path == "/close") {
      break;
    } else if (path == "/drop-next") {
      dropNext = true;
      out = response(200, "ok\n");
    } else if (path == "/hang") {
      char b;
      while (::recv(fd, &b, 1, 0) > 0) {
      }
      break;
    } else if (path == "/ws" && upgrade) {
      out = "HTTP/1.1 101 Switching Protocols\r\nupgrade: " + *upgrade +
            "\r\nconnection: upgrade\r\n\r\n";
      if (!sendAll(fd, out)) break;
      std::string early = in.rest();
      if (!early.empty() && !sendAll(fd, early)) break;
      char buf[16384];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
        bytes_ += static_cast<uint64_t>(n);
        if (!sendAll(fd, std::string(buf, static_cast<size_t>(n)))) break;
      }
      break;
    } else if (path.rfind("/echo", 0) == 0) {
      out = response(200, req.body, {{"x-echo-method", req.method}, {"x-echo-target", target}});
    } else if (path.rfind("/status/", 0) == 0) {
      out = response(static_cast<int>(numberAfter("/status/")), "status\n");
    } else if (path.rfind("/grpc-status/", 0) == 0) {
      out = response(200, "",
                     {{"content-type", "application/grpc"},
                      {"grpc-status", path.substr(sizeof("/grpc-status/") - 1)}});
    } else if (path.rfind("/bytes/", 0) == 0) {
      uint64_t n = numberAfter("/bytes/");
      out = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(n) + "\r\n\r\n";
      if (!sendAll(fd, out)) break;
      out.clear();
      if (!head) {
        std::string chunk;
        for (uint64_t i = 0; i < n;) {
          chunk.clear();
          for (size_t k = 0; k < 65536 && i < n; ++k, ++i) chunk += patternByte(i);
          if (!sendAll(fd, chunk)) {
            ok = false;
            break;
          }
        }
      }
    } else if (path.rfind("/chunked/", 0) == 0) {
      uint64_t n = numberAfter("/chunked/");
      out = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n";
      Sha bodySha;
      std::string chunk;
      for (uint64_t i = 0; i < n;) {
        chunk.clear();
        for (size_t k = 0; k < 16384 && i < n; ++k, ++i) chunk += patternByte(i);
        bodySha.update(chunk.data(), chunk.size());
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
        out += size + chunk + "\r\n";
        if (out.size() > 65536) {
          if (!sendAll(fd, out)) {
            ok = false;
            break;
          }
          out.clear();
        }
      }
      out += "0\r\nx-checksum: " + bodySha.final() + "\r\n\r\n";
    } else if (path == "/sha256" || path == "/slow-sha256") {
      out = response(200, req.bodySha256, {{"x-body-length", std::to_string(req.bodyLength)}});
    } else if (path.rfind("/slow/", 0) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(numberAfter("/slow/")));
      out = response(200, "slow\n");
    } else {
      out = response(200, "ok\n");
    }
    if (head && !out.empty()) out.erase(out.find("\r\n\r\n") + 4);
    if (!ok || (!out.empty() && !sendAll(fd, out))) break;
    const std::string* conn = req.header("connection");
    if (conn && lower(*conn) == "close") break;
  }
  ::shutdown(fd, SHUT_WR);
  {
    std::lock_guard<std::mutex> l(mu_);
    openFds_.erase(std::remove(openFds_.begin(), openFds_.end(), fd), openFds_.end());
  }
  ::close(fd);
}

}  // namespace tether::test
