#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::proxy {

/// What serves a downstream connection once detection has decided its protocol: HTTP/1.1
/// (Http1ServerCodec), HTTP/2 (Http2ServerSession) or raw TCP (TcpServerCodec). The
/// connection installs one and hands it every later event, without asking which it is.
class ServerCodec {
 public:
  virtual ~ServerCodec() = default;
  /// Bytes from the client (decrypted, over TLS).
  virtual void onRead(const char* data, size_t len) = 0;
  /// The client finished sending (or the read failed).
  virtual void onReadEnd(int status) = 0;
  /// The connection's write buffer passed its high (true) or low (false) mark.
  virtual void onWriteWatermark(bool aboveHigh) = 0;
  /// The worker's sweep, with the loop time (ms): connection timeouts.
  virtual void onSweep(uint64_t now) = 0;
  /// Drain: stop taking new requests, close once what is in flight is done.
  virtual void onDrain() = 0;
  /// The drain deadline: answer what can be answered (503 draining), close the rest.
  virtual void abortForShutdown() = 0;
  /// The socket is closed: end every stream quietly. No call follows.
  virtual void onConnectionClosed() = 0;
};

}  // namespace tether::proxy
