#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tether::test {

/// A directory for this test process, removed at exit.
const std::string& tempDir();
/// Writes `content` to tempDir()/name and returns the path.
std::string writeFile(const std::string& name, const std::string& content);
/// The whole content of the file at `path` ("" when it cannot be read).
std::string readFile(const std::string& path);

/// Runs a shell command; returns its exit status and captures stdout (and stderr when
/// `mergeStderr`).
int runCommand(const std::string& cmd, std::string* out = nullptr, bool mergeStderr = false);

/// A CA and leaf certificates signed by it, in tempDir()/<dir>: ca.crt, and for each name
/// N given, N.crt and N.key (CN=N, SANs: N, localhost, 127.0.0.1). Returns the directory.
std::string makePki(const std::string& dir, const std::vector<std::string>& names);

/// The real `tether` binary, started on a config whose ports are 0; the chosen ports are
/// read back from its log. Killed (SIGKILL) on destruction if still running.
class TetherProcess {
 public:
  /// `bootstrap` is YAML; "{{UPSTREAM}}"-style placeholders are the caller's business.
  explicit TetherProcess(const std::string& bootstrap, std::vector<std::string> extraArgs = {});
  ~TetherProcess();
  TetherProcess(const TetherProcess&) = delete;
  TetherProcess& operator=(const TetherProcess&) = delete;

  bool started() const { return started_; }
  uint16_t port(const std::string& listener) const;
  uint16_t adminPort() const { return adminPort_; }
  pid_t pid() const { return pid_; }
  void signal(int sig);
  /// Waits for exit; returns the exit status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running();
  std::string logs() const;
  /// The bootstrap file it runs with (rewrite it and reload to change the bootstrap).
  const std::string& configPath() const { return configPath_; }
  /// Resident set size in KiB (from /proc), or 0.
  long rssKiB() const;

 private:
  pid_t pid_ = -1;
  std::string logPath_;
  std::string configPath_;
  std::map<std::string, uint16_t> ports_;
  uint16_t adminPort_ = 0;
  bool started_ = false;
  bool exited_ = false;
  int status_ = 0;
};

/// UBSan reports ("runtime error:") in a proxy log, less the vptr checks that failed only
/// because the process had no descriptor for UBSan's memory probe.
size_t ubsanReports(const std::string& log);

/// A loopback TCP port that was free a moment ago (for peers that cannot report theirs).
uint16_t freePort();

/// A helper process (a gRPC server, nghttpd, ...) started with /bin/sh -c in its own
/// process group, output to a log file; the group is killed on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(const std::string& shellCommand);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  /// Waits until the output matches `pattern` (ECMAScript regex); returns the first capture
  /// group (or the whole match), "" on timeout.
  std::string waitFor(const std::string& pattern, int timeoutMs = 10000);
  std::string output() const;
  /// SIGTERM to the group, then waits up to `timeoutMs`: the exit code, or -1 (then
  /// SIGKILL).
  int terminate(int timeoutMs = 5000);

 private:
  pid_t pid_ = -1;
  std::string logPath_;
};

/// A parsed HTTP/1.1 response.
struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool closed = false;  // the server closed the connection after it

  const std::string* header(const std::string& name) const;
};

/// A blocking HTTP/1.1 client connection for tests that need byte-level control.
class RawClient {
 public:
  explicit RawClient(uint16_t port);
  ~RawClient();
  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  /// Reads one response (Content-Length, chunked or close-delimited).
  bool readResponse(HttpResponse& r, bool headRequest = false, int timeoutMs = 5000);
  /// Reads until the peer closes or the timeout passes; returns what came.
  std::string readAll(int timeoutMs = 2000);
  /// Whether the peer closed the connection within the timeout.
  bool waitClosed(int timeoutMs = 2000);
  int fd() const { return fd_; }

 private:
  bool fill(int timeoutMs);
  bool readLine(std::string& line, int timeoutMs);

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

/// One request on a fresh connection.
HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& target,
                         const std::string& host = "localhost", const std::string& body = "",
                         const std::vector<std::pair<std::string, std::string>>& headers = {});

/// A GET to the admin port; returns the response.
HttpResponse adminGet(uint16_t adminPort, const std::string& path);

/// The value of one sample in Prometheus text, matched by name and a label substring
/// (e.g. "code=\"200\""); -1 when absent.
double metricValue(const std::string& text, const std::string& name,
                   const std::string& labelSubstring = "");

/// Polls `condition` every 20 ms until it holds (true) or `timeoutMs` passes (false).
bool waitUntil(const std::function<bool()>& condition, int timeoutMs = 3000);

/// A bootstrap YAML with an outbound and an inbound listener on port 0, admin on port 0,
/// `workers` workers, `localApp` pointing at `appPort`, and the given drain timeout (grace
/// 200ms). `extra` is appended verbatim.
std::string basicBootstrap(uint16_t appPort, const std::string& extra = "", int workers = 1,
                           const std::string& drainTimeout = "5s");

/// basicBootstrap() plus inline rules: Service "up" (127.0.0.1:`upPort`) behind a Route for
/// host "up" (pathPrefix /hang has a 300ms timeout; `routeExtra` is appended to the catch-all
/// rule), Service "dead" (a closed port) for host "dead", and Service "empty" (no endpoints)
/// for host "empty".
std::string routedBootstrap(uint16_t upPort, const std::string& extra = "",
                            const std::string& routeExtra = "");

/// One rule document as an item of `rules.inline` (indented for routedBootstrap()'s list).
std::string doc(const std::string& kind, const std::string& name, const std::string& spec);

/// When `skip` holds, prints "TETHER_SKIP: <reason>" (CTest reports the test skipped on that
/// line) and returns true: the test returns at once. For tests whose data or peers may be
/// absent, such as a corpus kept beside the clone rather than in it.
bool skipTest(bool skip, const std::string& reason);

/// Runs curl with `args` (silent, errors shown, 20 s limit); returns stdout and stderr.
std::string curl(const std::string& args);

}  // namespace tether::test
