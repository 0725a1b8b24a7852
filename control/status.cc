#include "control/status.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "proxy/common/json.h"

namespace tether::control {

bool httpGet(const config::Address& address, const std::string& path, int timeoutMs,
             std::string& body, std::string& error) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(address.port);
    len = sizeof(*in4);
  } else if (inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port);
    len = sizeof(*in6);
  } else {
    error = "bad address " + address.toString();
    return false;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return false;
  }
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    error = "cannot connect to " + address.toString() + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + address.toString() + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    error = "cannot send to " + address.toString();
    ::close(fd);
    return false;
  }
  std::string response;
  char buf[16384];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  size_t head = response.find("\r\n\r\n");
  if (head == std::string::npos || response.compare(0, 9, "HTTP/1.1 ") != 0) {
    error = "no HTTP answer from " + address.toString();
    return false;
  }
  if (response.compare(9, 3, "200") != 0) {
    error = address.toString() + " answered " + response.substr(9, 3);
    return false;
  }
  body = response.substr(head + 4);
  return true;
}

namespace {

std::string ago(int64_t since) {
  int64_t s = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count() -
              since;
  if (s < 0) s = 0;
  char out[32];
  if (s < 120) {
    std::snprintf(out, sizeof(out), "%llds", static_cast<long long>(s));
  } else if (s < 7200) {
    std::snprintf(out, sizeof(out), "%lldm", static_cast<long long>(s / 60));
  } else {
    std::snprintf(out, sizeof(out), "%lldh", static_cast<long long>(s / 3600));
  }
  return out;
}

}  // namespace

int printStatus(const config::Address& admin, bool json) {
  std::string body, error;
  if (!httpGet(admin, "/sidecars", 5000, body, error)) {
    std::fprintf(stderr, "tether status: %s\n", error.c_str());
    return 1;
  }
  if (json) {
    std::fputs(body.c_str(), stdout);
    return 0;
  }
  auto doc = proxy::JsonValue::parse(body);
  if (!doc) {
    std::fprintf(stderr, "tether status: the control plane's answer is not JSON\n");
    return 1;
  }
  const std::string& version = (*doc)["version"].str();
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "SERVICE", "ADDRESS", "CONNECTED", "ACKED", "STATE", "LAST NACK"}};
  for (const auto& s : (*doc)["sidecars"].items()) {
    std::string acked = s["ackedVersion"].str();
    const proxy::JsonValue& nack = s["lastNack"];
    std::string state = acked == version ? "SYNCED" : "STALE";
    std::string lastNack = "-";
    if (nack.isObject()) {
      if (nack["version"].str() == version) state = "NACKED";
      lastNack = "version " + nack["version"].str();
      for (const auto& e : nack["errors"].items()) {
        lastNack += "; " + e["document"].str() + ": " + e["reason"].str();
      }
    }
    rows.push_back({s["name"].str(), s["service"].str(),
                    s["address"].str().empty() ? "-" : s["address"].str(),
                    ago(static_cast<int64_t>(s["connectedSince"].number())),
                    acked.empty() ? "-" : acked, state, lastNack});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i + 1 < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("control plane version %s, %zu sidecar(s), %zu registered instance(s)\n",
              version.c_str(), (*doc)["sidecars"].items().size(),
              (*doc)["instances"].items().size());
  return 0;
}

}  // namespace tether::control
