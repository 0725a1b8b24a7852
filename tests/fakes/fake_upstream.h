#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tether::test {

/// A request as the fake upstream received it.
struct RecordedRequest {
  std::string method;
  std::string target;
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  uint64_t bodyLength = 0;
  std::string bodySha256;  // hex
  std::string body;        // first 64 KiB only

  const std::string* header(const std::string& name) const;
};

/// A blocking, thread-per-connection HTTP/1.1 origin for integration tests, written
/// independently of Tether's codec. Its behaviour depends on the path:
///   /echo          200, body = request body, x-echo-method / x-echo-target headers
///   /status/N      status N
///   /grpc-status/V 200, content-type application/grpc, grpc-status: V (as given)
///   /bytes/N       N pattern bytes with Content-Length
///   /chunked/N     N pattern bytes, chunked, with a trailer "x-checksum: <sha256>"
///   /sha256        200, body = hex SHA-256 of the request body, x-body-length header
///   /slow-sha256   the same, reading the body slowly (1 ms pause per read)
///   /slow/MS       waits MS milliseconds, then 200
///   /ws            101 Switching Protocols (when asked to upgrade), then echoes bytes
///   /close         closes the connection without answering
///   /drop-next     200, then closes the connection when the next request arrives
///   /hang          never answers
///   anything else  200 "ok"
/// Every raw byte received is counted, so tests can prove nothing reached it.
class FakeUpstream {
 public:
  /// Listens on `ip` (any loopback address) and `port` (0: a free one).
  explicit FakeUpstream(const char* ip = "127.0.0.1", uint16_t port = 0);
  ~FakeUpstream();
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  uint16_t port() const { return port_; }
  uint64_t bytesReceived() const { return bytes_.load(); }
  uint64_t connections() const { return connections_.load(); }
  size_t requestCount() const;
  RecordedRequest lastRequest() const;
  std::vector<RecordedRequest> requests() const;
  void clear();
  /// Answers every request with `status` (0: back to normal behaviour).
  void setForcedStatus(int status) { forcedStatus_ = status; }

 private:
  void acceptLoop();
  void serve(int fd);
  size_t record(const RecordedRequest& r);
  void update(size_t index, const RecordedRequest& r);

  int listenFd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<int> forcedStatus_{0};
  std::thread acceptThread_;
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;
  std::vector<std::thread> workers_;
  std::vector<int> openFds_;
};

/// The byte at offset i of the /bytes and /chunked bodies.
inline char patternByte(uint64_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

std::string sha256Hex(const std::string& data);

}  // namespace tether::test
