#pragma once

#include <string>
#include <string_view>

#include "proxy/codec/headers.h"
#include "proxy/network/connection.h"

namespace tether::proxy {

/// HTTP/1.1 serialization shared by the downstream codec (responses) and the router
/// (requests): header fields and body framing.

/// Appends "name: value\r\n" for each field.
void appendHeaderFields(std::string& out, const HeaderMap& fields);

/// Writes body bytes: as one chunk when `chunked` (and the last chunk "0\r\n\r\n" when
/// `endStream`), as they are otherwise.
void writeBody(TcpConnection& conn, std::string_view data, bool endStream, bool chunked);

/// Ends a chunked body with trailers: "0\r\n" + fields + "\r\n". `scratch` is reused.
void writeTrailers(TcpConnection& conn, const HeaderMap& trailers, std::string& scratch);

}  // namespace tether::proxy
