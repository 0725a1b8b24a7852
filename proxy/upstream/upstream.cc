#include "proxy/upstream/upstream.h"

namespace tether::proxy {

UpstreamTarget::UpstreamTarget(const config::Address& address, std::shared_ptr<TlsContextSlot> tls,
                               std::string serverName)
    : address_(address), tls_(std::move(tls)), serverName_(std::move(serverName)) {
  valid_ = toSockaddr(address_, sockaddr_);
}

void UpstreamTarget::prepare(TcpConnection& conn) const {
  if (tls_) conn.connectTls(tls_->get(), serverName_);
}

}  // namespace tether::proxy
