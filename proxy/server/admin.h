#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "config/address.h"
#include "proxy/codec/headers.h"
#include "proxy/downstream/acceptor.h"

namespace tether::proxy {

struct AdminRequest {
  std::string method;
  std::string path;  // without the query string
  std::string query;
};

struct AdminResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

/// Sends the response for one admin request; may be called later (after collecting from
/// the workers), exactly once, on the control thread.
using AdminRespond = std::function<void(AdminResponse)>;
using AdminHandler = std::function<void(const AdminRequest&, AdminRespond)>;

/// A small HTTP/1.1 server on the control loop: one request per connection, then close.
/// Admin traffic is rare and local; simplicity beats throughput here.
class AdminServer {
 public:
  /// `onPause` is told the errno of each accept back-off (see Acceptor).
  AdminServer(uv_loop_t* loop, AdminHandler handler, std::function<void(int err)> onPause = {});
  ~AdminServer();

  /// Binds and listens; writes back the chosen port when address.port is 0. Returns 0 or a
  /// negative errno.
  int listen(config::Address& address);
  /// Closes the listener and every connection still open.
  void close();

  struct Shared;  // the handler and the open connections (admin.cc)

 private:
  uv_loop_t* loop_;
  std::shared_ptr<Shared> shared_;
  std::function<void(int)> onPause_;
  // With a reserve descriptor: probes are answered while the proxy is out of descriptors.
  std::unique_ptr<Acceptor> acceptor_;
};

}  // namespace tether::proxy
