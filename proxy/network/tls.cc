#include "proxy/network/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstring>

namespace tether::proxy {

namespace {

std::string opensslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  std::string out = what;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

int64_t mtime(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// ALPN: the server prefers h2, then http/1.1.
constexpr unsigned char kServerAlpn[] = "\x02h2\x08http/1.1";

int selectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  // The listener's own list when it set one (a protocol: http1 listener never picks h2).
  const auto* wire = static_cast<const unsigned char*>(SSL_get_app_data(ssl));
  unsigned int wireLen =
      wire ? static_cast<unsigned int>(std::strlen(reinterpret_cast<const char*>(wire)))
           : static_cast<unsigned int>(sizeof(kServerAlpn) - 1);
  if (!wire) wire = kServerAlpn;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, wire, wireLen, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

bool loadKeyPair(SSL_CTX* ctx, const std::string& cert, const std::string& key,
                 std::string& error) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    error = opensslError("cannot load certificate " + cert);
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = opensslError("cannot load key " + key);
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = opensslError("key " + key + " does not match certificate " + cert);
    return false;
  }
  return true;
}

}  // namespace

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<TlsContext> TlsContext::create(const SSL_METHOD* method, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (!ctx) {
    error = opensslError("cannot create a TLS context");
    return nullptr;
  }
  std::shared_ptr<TlsContext> out(new TlsContext(ctx));
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    error = opensslError("cannot require TLS 1.2");
    return nullptr;
  }
  return out;
}

std::shared_ptr<TlsContext> TlsContext::server(const config::TlsServerConfig& c,
                                               std::string& error) {
  std::shared_ptr<TlsContext> out = create(TLS_server_method(), error);
  if (!out) return nullptr;
  SSL_CTX* ctx = out->get();
  if (!loadKeyPair(ctx, c.certFile, c.keyFile, error)) return nullptr;
  // Resumption: a server-side session cache for TLS 1.2 ids, tickets (OpenSSL's default)
  // for TLS 1.3. The context is shared by all workers, so a client resumes on any of them.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  static const unsigned char kSessionContext[] = "tether";
  if (SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1) != 1) {
    error = opensslError("cannot set the session id context");
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, nullptr);
  if (!c.caFile.empty()) {
    // Mutual TLS: the client's chain must lead to this CA bundle (and be in date).
    if (SSL_CTX_load_verify_locations(ctx, c.caFile.c_str(), nullptr) != 1) {
      error = opensslError("cannot load CA file " + c.caFile);
      return nullptr;
    }
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.caFile.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (c.requireClientCert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  }
  return out;
}

std::shared_ptr<TlsContext> TlsContext::client(const config::TlsClientConfig& c,
                                               std::string_view alpn, std::string& error) {
  std::shared_ptr<TlsContext> out = create(TLS_client_method(), error);
  if (!out) return nullptr;
  SSL_CTX* ctx = out->get();
  if (SSL_CTX_load_verify_locations(ctx, c.caFile.c_str(), nullptr) != 1) {
    error = opensslError("cannot load CA file " + c.caFile);
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!c.certFile.empty() && !loadKeyPair(ctx, c.certFile, c.keyFile, error)) return nullptr;
  // "h2,http/1.1" -> the wire format: length-prefixed names.
  std::string wire;
  while (!alpn.empty()) {
    std::string_view name = alpn.substr(0, alpn.find(','));
    wire += static_cast<char>(name.size());
    wire += name;
    alpn.remove_prefix(std::min(alpn.size(), name.size() + 1));
  }
  // Unlike most of OpenSSL, 0 is success here.
  if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0) {
    error = opensslError("cannot set the ALPN list");
    return nullptr;
  }
  return out;
}

std::shared_ptr<TlsContext> TlsContextSlot::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ctx_;
}

void TlsContextSlot::set(std::shared_ptr<TlsContext> ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  ctx_ = std::move(ctx);
}

std::shared_ptr<TlsContextSlot> TlsRegistry::get(
    const std::string& key, std::vector<std::string> files,
    std::function<std::shared_ptr<TlsContext>(std::string&)> build, std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second.slot;
  Entry e;
  for (const auto& f : files) e.mtimes.push_back(mtime(f));
  auto ctx = build(error);
  if (!ctx) return nullptr;
  e.files = std::move(files);
  e.build = std::move(build);
  e.slot = std::make_shared<TlsContextSlot>();
  e.slot->set(std::move(ctx));
  return entries_.emplace(key, std::move(e)).first->second.slot;
}

std::shared_ptr<TlsContextSlot> TlsRegistry::server(const config::TlsServerConfig& c,
                                                    std::string& error) {
  std::vector<std::string> files = {c.certFile, c.keyFile};
  if (!c.caFile.empty()) files.push_back(c.caFile);
  return get(
      "server\n" + c.certFile + "\n" + c.keyFile + "\n" + c.caFile + "\n" +
          (c.requireClientCert ? "1" : "0"),
      files, [c](std::string& err) { return TlsContext::server(c, err); }, error);
}

std::shared_ptr<TlsContextSlot> TlsRegistry::client(const config::TlsClientConfig& c,
                                                    std::string_view alpn, std::string& error) {
  std::vector<std::string> files = {c.caFile};
  if (!c.certFile.empty()) files.insert(files.end(), {c.certFile, c.keyFile});
  std::string a(alpn);
  return get(
      "client\n" + c.caFile + "\n" + c.certFile + "\n" + c.keyFile + "\n" + a, files,
      [c, a](std::string& err) { return TlsContext::client(c, a, err); }, error);
}

int TlsRegistry::reloadChanged() {
  std::lock_guard<std::mutex> lock(mu_);
  int replaced = 0;
  for (auto& [key, e] : entries_) {
    std::vector<int64_t> now;
    for (const auto& f : e.files) now.push_back(mtime(f));
    if (now == e.mtimes) continue;
    std::string error;
    auto ctx = e.build(error);
    if (!ctx) continue;  // a half-written pair: try again on the next tick
    e.mtimes = now;
    e.slot->set(std::move(ctx));
    ++replaced;
  }
  return replaced;
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, bool server, const std::string& name)
    : ctx_(std::move(ctx)), ssl_(SSL_new(ctx_->get())) {
  // A session that cannot be set up fails its first handshake step with the reason (a
  // client without its name check would accept any certificate: never that).
  if (!ssl_) {
    error_ = opensslError("cannot create a TLS session");
    return;
  }
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (!rbio_ || !wbio_) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    error_ = opensslError("cannot create a TLS session");
    return;
  }
  SSL_set_bio(ssl_, rbio_, wbio_);
  if (server) {
    SSL_set_accept_state(ssl_);
    ready_ = true;
    return;
  }
  SSL_set_connect_state(ssl_);
  in6_addr ip6;
  in_addr ip4;
  bool isIp =
      inet_pton(AF_INET, name.c_str(), &ip4) == 1 || inet_pton(AF_INET6, name.c_str(), &ip6) == 1;
  bool ok = true;
  if (isIp) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str()) == 1;
  } else if (!name.empty()) {
    ok =
        SSL_set_tlsext_host_name(ssl_, name.c_str()) == 1 && SSL_set1_host(ssl_, name.c_str()) == 1;
  }
  if (!ok) {
    error_ = opensslError("cannot set the name to verify (" + name + ")");
    return;
  }
  ready_ = true;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::setServerAlpn(const char* wire) {
  if (ssl_) SSL_set_app_data(ssl_, const_cast<char*>(wire));
}

void TlsSession::readPeerIdentity() {
  // Only a chain that verified counts (a server context without caFile verifies nothing).
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) return;
  if (SSL_get_verify_result(ssl_) == X509_V_OK &&
      SSL_CTX_get_verify_mode(SSL_get_SSL_CTX(ssl_)) & SSL_VERIFY_PEER) {
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      if (n->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = n->d.uniformResourceIdentifier;
      peerIdentity_.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                           static_cast<size_t>(ASN1_STRING_length(uri)));
      break;
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
}

std::string_view TlsSession::alpn() const {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}

bool TlsSession::startHandshake(std::string& out) {
  std::string none;
  return drive(none, out);
}

bool TlsSession::fail(int rc) {
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
  if (err == SSL_ERROR_ZERO_RETURN) {
    peerClosed_ = true;
    return true;
  }
  error_ = opensslError(handshakeDone_ ? "tls error" : "tls handshake failed");
  return false;
}

bool TlsSession::drive(std::string& plain, std::string& out) {
  if (!ready_) return false;  // error_ says why
  if (!handshakeDone_) {
    int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      bool ok = fail(rc);
      drain(out);
      return ok;
    }
    handshakeDone_ = true;
    handshakeEvent_ = true;
    readPeerIdentity();
  }
  char buf[16384];
  while (true) {
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) {
      bool ok = fail(n);
      drain(out);
      return ok;
    }
    plain.append(buf, static_cast<size_t>(n));
  }
}

bool TlsSession::receive(const char* data, size_t len, std::string& plain, std::string& out) {
  if (!ready_) return false;
  // A memory BIO takes everything (it grows) unless memory runs out.
  if (len > 0 && BIO_write(rbio_, data, static_cast<int>(len)) != static_cast<int>(len)) {
    error_ = opensslError("tls: cannot buffer what was read");
    return false;
  }
  return drive(plain, out);
}

bool TlsSession::releaseHeld(std::string& out) {
  std::string held;
  held.swap(pending_);
  return send(held, out);
}

bool TlsSession::send(std::string_view plain, std::string& out) {
  if (!handshakeDone_ || handshakeEvent_) {
    pending_.append(plain);
    return true;
  }
  if (!ready_) return false;
  if (!plain.empty() && SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) <= 0) {
    error_ = opensslError("tls write failed");
    return false;
  }
  drain(out);
  return true;
}

void TlsSession::drain(std::string& out) {
  size_t n;
  while ((n = BIO_ctrl_pending(wbio_)) > 0) {
    size_t old = out.size();
    out.resize(old + n);
    int got = BIO_read(wbio_, out.data() + old, static_cast<int>(n));
    out.resize(old + (got > 0 ? static_cast<size_t>(got) : 0));
    if (got <= 0) break;
  }
}

}  // namespace tether::proxy
