#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

namespace tether::test {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tether-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { runCommand("rm -rf '" + path + "'"); }
};

}  // namespace

const std::string& tempDir() {
  static TempDir dir;
  return dir.path;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string writeFile(const std::string& name, const std::string& content) {
  std::string path = tempDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

int runCommand(const std::string& cmd, std::string* out, bool mergeStderr) {
  std::string full = cmd + (mergeStderr ? " 2>&1" : "");
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    if (out) out->append(buf, n);
  }
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string makePki(const std::string& dir, const std::vector<std::string>& names) {
  std::string d = tempDir() + "/" + dir;
  std::string cmd = "set -e; mkdir -p " + d + "; cd " + d +
                    "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt "
                    "-days 2 -subj /CN=tether-test-ca 2>/dev/null";
  for (const auto& n : names) {
    cmd += "; openssl req -newkey rsa:2048 -nodes -keyout " + n + ".key -out " + n +
           ".csr -subj /CN=" + n + " 2>/dev/null; printf 'subjectAltName=DNS:" + n +
           ",DNS:localhost,IP:127.0.0.1\\n' > " + n + ".ext; openssl x509 -req -in " + n +
           ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out " + n + ".crt -extfile " +
           n + ".ext 2>/dev/null";
  }
  REQUIRE(runCommand(cmd) == 0);
  return d;
}

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

ChildProcess::ChildProcess(const std::string& shellCommand) {
  static int counter = 0;
  logPath_ =
      tempDir() + "/child-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + ".log";
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    int fd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    dup2(fd, STDOUT_FILENO);
    execl("/bin/sh", "sh", "-c", shellCommand.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid_, pid_);
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

int ChildProcess::terminate(int timeoutMs) {
  if (pid_ <= 0) return -1;
  ::kill(-pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return -1;
}

std::string ChildProcess::waitFor(const std::string& pattern, int timeoutMs) {
  std::regex re(pattern);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = output();
    std::smatch m;
    if (std::regex_search(log, m, re)) return m.size() > 1 ? m[1].str() : m[0].str();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

std::string ChildProcess::output() const { return readFile(logPath_); }

TetherProcess::TetherProcess(const std::string& bootstrap, std::vector<std::string> extraArgs) {
  static int counter = 0;
  std::string name = "tether-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  configPath_ = writeFile(name + ".yaml", bootstrap);
  logPath_ = tempDir() + "/" + name + ".log";
  std::vector<std::string> args = {TETHER_BIN, "run", "-c", configPath_};
  for (auto& a : extraArgs) args.push_back(a);
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    dup2(fd, STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::regex listenerRe(R"(listener (\S+) \(\w+\) on \S+:(\d+))");
  std::regex adminRe(R"(admin on \S+:(\d+))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = readFile(logPath_);
    if (log.find("tether started") != std::string::npos) {
      for (std::sregex_iterator it(log.begin(), log.end(), listenerRe), end; it != end; ++it) {
        ports_[(*it)[1]] = static_cast<uint16_t>(std::stoi((*it)[2]));
      }
      std::smatch m;
      if (std::regex_search(log, m, adminRe)) adminPort_ = static_cast<uint16_t>(std::stoi(m[1]));
      started_ = true;
      return;
    }
    if (!running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TetherProcess::~TetherProcess() {
  if (pid_ > 0 && running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(5));
  }
  // A sanitizer report from the proxy (ASan, UBSan, LSan) fails the test that ran it.
  std::string log = logs();
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer"}) {
    if (log.find(marker) != std::string::npos) {
      FAIL_CHECK("sanitizer report in tether's log:\n" << log);
      return;
    }
  }
  if (ubsanReports(log) > 0) FAIL_CHECK("sanitizer report in tether's log:\n" << log);
}

size_t ubsanReports(const std::string& log) {
  // UBSan's vptr check reads the object through a pipe it opens; when the process has no
  // descriptor left (the exhaustion tests) that fails, and the check reports an "invalid
  // vptr" whose memory "cannot be printed". Such a report says nothing about the object (a
  // real use after free is ASan's to report, and real memory can be printed): not counted.
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  size_t reports = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("runtime error:") == std::string::npos) continue;
    bool probeFailed =
        i + 2 < lines.size() &&
        lines[i].find("which does not point to an object of type") != std::string::npos &&
        lines[i + 1].find("note: object has invalid vptr") != std::string::npos &&
        lines[i + 2] == "<memory cannot be printed>";
    if (!probeFailed) ++reports;
  }
  return reports;
}

uint16_t TetherProcess::port(const std::string& listener) const {
  auto it = ports_.find(listener);
  return it == ports_.end() ? 0 : it->second;
}

void TetherProcess::signal(int sig) {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

bool TetherProcess::running() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int TetherProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

std::string TetherProcess::logs() const { return readFile(logPath_); }

long TetherProcess::rssKiB() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

const std::string* HttpResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

RawClient::RawClient(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawClient::fill(int timeoutMs) {
  if (eof_) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeoutMs) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(buf, static_cast<size_t>(n));
  return true;
}

bool RawClient::readLine(std::string& line, int timeoutMs) {
  for (;;) {
    size_t nl = buf_.find("\r\n");
    if (nl != std::string::npos) {
      line = buf_.substr(0, nl);
      buf_.erase(0, nl + 2);
      return true;
    }
    if (!fill(timeoutMs)) return false;
  }
}

bool RawClient::readResponse(HttpResponse& r, bool headRequest, int timeoutMs) {
  r = HttpResponse{};
  std::string line;
  for (;;) {
    if (!readLine(line, timeoutMs)) return false;
    if (line.size() < 12) return false;
    r.status = std::stoi(line.substr(9, 3));
    r.headers.clear();
    while (readLine(line, timeoutMs) && !line.empty()) {
      size_t c = line.find(':');
      std::string v = line.substr(c + 1);
      v.erase(0, v.find_first_not_of(' '));
      r.headers.emplace_back(lower(line.substr(0, c)), v);
    }
    if (r.status >= 100 && r.status < 200 && r.status != 101) continue;  // interim
    break;
  }
  const std::string* cl = r.header("content-length");
  const std::string* te = r.header("transfer-encoding");
  if (headRequest || r.status == 204 || r.status == 304 || r.status == 101) {
  } else if (te && lower(*te) == "chunked") {
    for (;;) {
      if (!readLine(line, timeoutMs)) return false;
      size_t n = std::stoul(line, nullptr, 16);
      if (n == 0) {
        while (readLine(line, timeoutMs) && !line.empty()) {
          size_t c = line.find(':');
          std::string v = line.substr(c + 1);
          v.erase(0, v.find_first_not_of(' '));
          r.trailers.emplace_back(lower(line.substr(0, c)), v);
        }
        break;
      }
      while (buf_.size() < n + 2) {
        if (!fill(timeoutMs)) return false;
      }
      r.body.append(buf_, 0, n);
      buf_.erase(0, n + 2);
    }
  } else if (cl) {
    size_t n = std::stoul(*cl);
    while (buf_.size() < n) {
      if (!fill(timeoutMs)) return false;
    }
    r.body = buf_.substr(0, n);
    buf_.erase(0, n);
  } else {
    while (fill(timeoutMs)) {
    }
    r.body = buf_;
    buf_.clear();
    r.closed = true;
  }
  const std::string* conn = r.header("connection");
  if (conn && lower(*conn) == "close") r.closed = true;
  return true;
}

std::string RawClient::readAll(int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (!eof_ && std::chrono::steady_clock::now() < deadline) fill(50);
  std::string out;
  out.swap(buf_);
  return out;
}

bool RawClient::waitClosed(int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (!eof_ && std::chrono::steady_clock::now() < deadline) fill(50);
  return eof_;
}

HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& target,
                         const std::string& host, const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  RawClient c(port);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  HttpResponse r;
  if (!c.send(req) || !c.readResponse(r, method == "HEAD")) r.status = 0;
  return r;
}

HttpResponse adminGet(uint16_t adminPort, const std::string& path) {
  return httpRequest(adminPort, "GET", path, "127.0.0.1");
}

double metricValue(const std::string& text, const std::string& name,
                   const std::string& labelSubstring) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : ' ';
    if (next != '{' && next != ' ') continue;
    if (!labelSubstring.empty() && line.find(labelSubstring) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

bool waitUntil(const std::function<bool()>& condition, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string basicBootstrap(uint16_t appPort, const std::string& extra, int workers,
                           const std::string& drainTimeout) {
  return "admin: { address: 127.0.0.1:0 }\n"
         "workers: " +
         std::to_string(workers) +
         "\n"
         "listeners:\n"
         "  - { name: outbound, address: 127.0.0.1:0, direction: outbound }\n"
         "  - { name: inbound, address: 127.0.0.1:0, direction: inbound }\n"
         "localApp: { address: 127.0.0.1:" +
         std::to_string(appPort) +
         " }\n"
         "drain: { timeout: " +
         drainTimeout + ", grace: 200ms }\n" + extra;
}

std::string routedBootstrap(uint16_t upPort, const std::string& extra,
                            const std::string& routeExtra) {
  std::string p = std::to_string(upPort);
  return basicBootstrap(upPort, extra) +
         "rules:\n  inline:\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: up }\n"
         "      spec: { endpoints: [ { address: 127.0.0.1:" +
         p +
         " } ] }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: dead }\n"
         "      spec: { endpoints: [ { address: 127.0.0.1:1 } ] }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: empty }\n      spec: {}\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: up }\n"
         "      spec:\n        hosts: [ up ]\n        rules:\n"
         "          - match: { pathPrefix: /hang }\n"
         "            backends: [ { service: up } ]\n            timeout: 300ms\n"
         "          - match: { pathPrefix: / }\n"
         "            backends: [ { service: up } ]\n" +
         routeExtra +
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: dead }\n"
         "      spec: { hosts: [ dead ], rules: [ { backends: [ { service: dead } ] } ] }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: empty }\n"
         "      spec: { hosts: [ empty ], rules: [ { backends: [ { service: empty } ] } ] }\n";
}

std::string curl(const std::string& args) {
  std::string out;
  runCommand("curl -s -S --max-time 20 " + args, &out, true);
  return out;
}

std::string doc(const std::string& kind, const std::string& name, const std::string& spec) {
  return "    - apiVersion: tether.dev/v1alpha1\n      kind: " + kind +
         "\n      metadata: { name: " + name + " }\n      spec: " + spec + "\n";
}

bool skipTest(bool skip, const std::string& reason) {
  if (skip) std::cout << "TETHER_SKIP: " << reason << std::endl;
  return skip;
}

}  // namespace tether::test
