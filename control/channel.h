#pragma once

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstdint>
#include <string>

#include "config/address.h"
#include "proxy/common/json.h"

namespace tether::control {

/// One control-plane conversation: a single long-lived HTTP/2 stream (h2c, prior knowledge)
/// carrying newline-delimited JSON messages both ways (`POST /tether.v1/stream`, request
/// body sidecar -> control plane, response body control plane -> sidecar). The same class
/// serves both ends; docs/control-plane.md specifies the messages.
///
/// Lifetime: the owner creates it, and may delete it only from Handler::onClosed (the
/// last call it makes) or before connect()/adopt().
class Channel {
 public:
  enum class Role { kClient, kServer };

  class Handler {
   public:
    virtual ~Handler() = default;
    /// The stream is up: the server saw the request, or the client got its 200.
    virtual void onOpen(Channel& channel) {}
    virtual void onMessage(Channel& channel, const proxy::JsonValue& message) = 0;
    /// The connection is gone (`why` says how). Nothing of the channel is used after this.
    virtual void onClosed(Channel& channel, const std::string& why) = 0;
  };

  static constexpr const char* kPath = "/tether.v1/stream";
  /// A message longer than this closes the channel: a whole snapshot for a client, a
  /// sidecar's message (hello, ACK, NACK, registration) for the server.
  static constexpr size_t kMaxSnapshotBytes = 64 << 20;
  static constexpr size_t kMaxSidecarMessageBytes = 1 << 20;

  Channel(uv_loop_t* loop, Role role, Handler& handler);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Client: connects and opens the stream. Returns a libuv error code (0: in progress).
  int connect(const config::Address& address);
  /// Server: takes over an accepted socket (closed on failure, as the connection is).
  int adopt(int fd);
  /// Queues one message (a JSON object without the newline).
  void send(std::string json);
  /// Closes the connection; onClosed follows.
  void close(const std::string& why);
  bool isOpen() const { return open_; }
  /// Bytes queued towards the peer and not yet written.
  size_t pendingBytes() const { return out_.size() - outPos_ + writing_; }

  void* user = nullptr;  // for the owner

 private:
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source*, void* self);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* self);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onDataChunk(nghttp2_session*, uint8_t, int32_t stream, const uint8_t* data, size_t len,
                         void* self);
  static int onStreamClose(nghttp2_session*, int32_t stream, uint32_t error, void* self);

  void startSession();
  void onRead(ssize_t nread, const uv_buf_t* buf);
  void flush();
  void received(const char* data, size_t len);

  uv_loop_t* loop_;
  Role role_;
  Handler& handler_;
  uv_tcp_t tcp_;
  uv_connect_t connectReq_;
  nghttp2_session* session_ = nullptr;
  std::string authority_;
  int32_t streamId_ = -1;
  std::string out_;  // messages not yet handed to nghttp2
  size_t outPos_ = 0;
  size_t writing_ = 0;  // bytes in uv_write requests not yet completed
  std::string in_;      // a message not yet complete
  std::string status_;  // client: the response's :status
  std::string closeReason_;
  bool open_ = false;
  bool closing_ = false;
  bool tcpInitialized_ = false;
  bool inRecv_ = false;  // inside nghttp2_session_mem_recv (its callbacks)
};

}  // namespace tether::control
