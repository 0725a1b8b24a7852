#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/address.h"
#include "proxy/codec/http2_session.h"
#include "proxy/common/timer.h"
#include "proxy/upstream/upstream.h"
#include "proxy/worker/worker.h"

namespace tether::proxy {

class Http2Pool;
class Http2ClientConnection;

/// One request on a multiplexed upstream HTTP/2 connection. Lent to a router for one
/// exchange; lives until nghttp2 closes the stream (or the connection goes).
class Http2UpstreamStream : public UpstreamRequest, public Http2OutBody, public Deletable {
 public:
  Http2UpstreamStream(Http2ClientConnection& conn, UpstreamClient& client, bool headRequest)
      : conn_(conn), client_(&client), headRequest_(headRequest) {}

  // UpstreamRequest
  void sendHead(const RequestHead& head, std::string_view authority, const RequestExtras& extras,
                bool endStream) override;
  void sendData(std::string_view data, bool endStream) override;
  void sendTrailers(const HeaderMap& trailers) override;
  void readDisable(bool disable) override;
  void enterTunnel() override {}
  void close() override;
  void release(bool requestComplete) override;
  size_t bufferedBytes() const override { return queued(); }

 protected:
  void onOutWatermark(bool aboveHigh) override {
    if (client_) client_->onUpstreamWatermark(aboveHigh);
  }

 private:
  /// Resets the stream (CANCEL) unless nghttp2 already closed it.
  void cancel();

  Http2ClientConnection& conn_;
  UpstreamClient* client_;
  bool headRequest_;
  int32_t id_ = -1;
  ResponseHead head_;
  HeaderMap trailers_;
  bool finalHeaders_ = false;  // a final (non-1xx) response head was delivered
  bool responseComplete_ = false;
  bool closedByNghttp2_ = false;
  int readDisabled_ = 0;
  size_t unconsumed_ = 0;

  friend class Http2ClientConnection;
};

/// One HTTP/2 connection to an endpoint, shared by up to the peer's
/// SETTINGS_MAX_CONCURRENT_STREAMS requests of one worker. A GOAWAY from the upstream stops
/// new streams; streams it refused fail as `reused` (the router retries those it can).
class Http2ClientConnection : public Http2Session, public TcpConnection::Handler, public Deletable {
 public:
  Http2ClientConnection(Worker& worker, Http2Pool& pool);
  ~Http2ClientConnection() override;

  int connect(const sockaddr* addr, config::Duration timeout);
  TcpConnection& connection() { return tcp_; }
  /// A new stream for `client`; `ready` tells whether the head may be sent at once (else
  /// onUpstreamReady follows when the connection is up).
  Http2UpstreamStream* newStream(UpstreamClient& client, bool headRequest, bool& ready);
  /// Room for another stream (connected or connecting, no GOAWAY, under the peer's limit).
  bool hasCapacity() const;
  size_t streamCount() const { return streams_.size(); }
  void closeNow();
  /// The stream's router let go of it.
  void onStreamReleased(Http2UpstreamStream* s);

  // TcpConnection::Handler
  void onRead(const char* data, size_t len) override;
  void onReadEnd(int status) override;
  void onConnected(int status) override;
  void onWriteWatermark(bool aboveHigh) override { Http2Session::onWriteWatermark(aboveHigh); }
  bool onTlsHandshake(std::string_view alpn) override;
  void onClosed() override;

 private:
  void fillCallbacks(nghttp2_session_callbacks* cb) override;
  void afterSend() override;
  /// Fails every stream that has not seen a response (connect failure, reset, GOAWAY).
  void failStreams(Reason reason, bool reused);
  void armIdle();

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t streamId, const uint8_t* data,
                         size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t streamId, uint32_t errorCode, void* user);

  Http2Pool& pool_;
  std::shared_ptr<std::atomic<int64_t>> budget_;  // the service's open connections
  TcpConnection tcp_;
  Timer timer_;  // connect timeout, then idle timeout
  std::unordered_set<Http2UpstreamStream*> streams_;
  std::vector<Http2UpstreamStream*> waiting_;  // created before the connection was up
  std::string scratch_;
  bool connected_ = false;
  bool goawayReceived_ = false;
  bool closed_ = false;
  bool servedStreams_ = false;

  friend class Http2UpstreamStream;
  friend class Http2Pool;
};

/// HTTP/2 connections to one endpoint, for one worker.
class Http2Pool {
 public:
  Http2Pool(Worker& worker, UpstreamTarget target);
  ~Http2Pool();

  /// A stream on a connection with room (kReady, or kConnecting while that connection is
  /// coming up), or on a new one when `budget` allows (else kOverflow: a multiplexed pool
  /// does not queue). nullptr unless kReady or kConnecting (the client's onUpstreamFailure
  /// has not been called).
  Http2UpstreamStream* acquire(UpstreamClient& client, bool headRequest,
                               config::Duration connectTimeout, const ConnectionBudget& budget,
                               Lent& how);
  void onConnectionClosed(Http2ClientConnection* conn);
  void closeAll();
  size_t connectionCount() const { return conns_.size(); }
  size_t activeStreams() const;
  /// protocol: auto — connections offer h2 and http/1.1 and record the endpoint's choice
  /// under `key`; one that gets http/1.1 hands its requests back as refused.
  void setProbe(std::string_view key) { probeKey_ = key; }
  std::string_view probeKey() const { return probeKey_; }
  const config::Address& address() const { return target_.address(); }

 private:
  Worker& worker_;
  UpstreamTarget target_;
  std::vector<Http2ClientConnection*> conns_;
  std::string_view probeKey_;  // the owner's map key (stable); empty: not probing
};

}  // namespace tether::proxy
