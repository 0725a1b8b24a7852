#include "proxy/codec/http1_encoding.h"

#include <cstdio>

namespace tether::proxy {

void appendHeaderFields(std::string& out, const HeaderMap& fields) {
  for (const auto& f : fields) {
    out += f.name;
    out += ": ";
    out += f.value;
    out += "\r\n";
  }
}

void writeBody(TcpConnection& conn, std::string_view data, bool endStream, bool chunked) {
  if (!chunked) {
    conn.write(data);
    return;
  }
  if (!data.empty()) {
    char size[24];
    int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    conn.write(std::string_view(size, static_cast<size_t>(n)));
    conn.write(data);
    conn.write("\r\n");
  }
  if (endStream) conn.write("0\r\n\r\n");
}

void writeTrailers(TcpConnection& conn, const HeaderMap& trailers, std::string& scratch) {
  scratch = "0\r\n";
  appendHeaderFields(scratch, trailers);
  scratch += "\r\n";
  conn.write(scratch);
}

}  // namespace tether::proxy
