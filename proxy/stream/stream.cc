#include "proxy/stream/stream.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "proxy/codec/path_normalizer.h"
#include "proxy/common/log.h"

namespace tether::proxy {

ActiveStream::ActiveStream(Worker& worker, SnapshotPtr snapshot, ResponseEncoder& encoder,
                           StreamInfo info)
    : worker_(worker), snapshot_(std::move(snapshot)), encoder_(encoder), info_(std::move(info)) {
  info_.start = worker_.clock().steadyNow();
  const auto& chain = snapshot_->chain(info_.direction);
  filters_.reserve(chain.size());
  for (const auto& factory : chain) {
    filters_.push_back(factory->create());
    filters_.back()->setCallbacks(*this);
  }
}

ActiveStream::~ActiveStream() = default;

namespace {

void readGrpcStatus(const HeaderMap& fields, StreamInfo& info) {
  if (const HeaderString* s = fields.get("grpc-status")) {
    // The gRPC status codes are 0..16; anything else (or garbage) is UNKNOWN (2), as gRPC
    // clients read it. It becomes a metric label: its values must stay few.
    int v = -1;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    bool valid = ec == std::errc() && end == s->data() + s->size() && v >= 0 && v <= 16;
    info.grpcStatus = valid ? v : 2;
  }
}

/// grpc-message is percent-encoded (gRPC over HTTP/2): printable ASCII except '%' as is.
std::string grpcMessage(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

void ActiveStream::decodeHeaders(RequestHead head, bool endStream) {
  request_ = std::move(head);
  info_.grpc = isGrpc(request_.headers);
  requestEnd_ = endStream;
  requestHeadersEnd_ = endStream;
  requestComplete_ = endStream;
  // One form of the path for routing, every filter and the upstream alike.
  const char* why = nullptr;
  if (PathNormalizer(worker_.bootstrap().http.pathNormalization).normalize(request_.path, why) ==
      PathNormalizer::Result::kRejected) {
    sendLocalReply(400, std::string(why) + "\n", Reason::kBadRequest, nullptr);
    return;
  }
  if (!applyUnderscorePolicy()) return;
  runRequestHeaders(0);
}

bool ActiveStream::applyUnderscorePolicy() {
  using Underscores = config::HttpLimits::Underscores;
  Underscores policy = worker_.bootstrap().http.headersWithUnderscores;
  if (policy == Underscores::kAllow) return true;
  auto& fields = request_.headers.fields();
  auto underscore = [](const HeaderMap::Field& f) {
    return std::memchr(f.name.data(), '_', f.name.size()) != nullptr;
  };
  auto first = std::find_if(fields.begin(), fields.end(), underscore);
  if (first == fields.end()) return true;
  if (policy == Underscores::kReject) {
    sendLocalReply(400, "underscore in header name\n", Reason::kBadRequest, nullptr);
    return false;
  }
  fields.erase(std::remove_if(first, fields.end(), underscore), fields.end());
  return true;
}

void ActiveStream::runRequestHeaders(size_t from) {
  for (size_t i = from; i < filters_.size(); ++i) {
    // Whether the headers ended the request, even when filters run after the body came.
    FilterStatus s = filters_[i]->onRequestHeaders(request_, requestHeadersEnd_);
    if (finished_ || responseComplete_) return;
    // The last filter is terminal: its status ends iteration either way.
    if (s == FilterStatus::kStopIteration && i + 1 < filters_.size()) {
      requestStopped_ = true;
      requestStoppedAt_ = i;
      return;
    }
  }
}

void ActiveStream::decodeData(std::string& data, bool endStream) {
  info_.requestBytes += data.size();
  requestEnd_ = endStream;
  if (endStream) requestComplete_ = true;
  if (finished_ || responseComplete_) return;
  if (requestStopped_) {
    // Held until the filter resumes; a large body pauses the downstream instead of growing.
    // The filter holding the headers, and those before it, see the body as it arrives (to
    // hash or inspect it, not to change it); it is buffered first, so the holder may resume
    // from inside the call and the rest get it in order.
    pendingRequestData_.append(data);
    pendingRequestEnd_ = endStream;
    runRequestData(data, endStream, 0, requestStoppedAt_ + 1);
    if (finished_ || responseComplete_ || !requestStopped_) return;
    if (!requestReadPausedForBuffer_ && pendingRequestData_.size() > worker_.highWatermark()) {
      requestReadPausedForBuffer_ = true;
      encoder_.readDisable(true);
    }
    return;
  }
  runRequestData(data, endStream, 0, filters_.size());
}

void ActiveStream::runRequestData(std::string& data, bool endStream, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (filters_[i]->onRequestData(data, endStream) == FilterStatus::kStopIteration) return;
    if (finished_ || responseComplete_) return;
  }
}

void ActiveStream::decodeTrailers(HeaderMap trailers) {
  requestEnd_ = true;
  requestComplete_ = true;
  if (finished_ || responseComplete_) return;
  pendingRequestTrailers_ = std::move(trailers);
  if (requestStopped_) {
    hasPendingRequestTrailers_ = true;
    runRequestTrailers(0, requestStoppedAt_ + 1);  // the end of the body, for the holder
    return;
  }
  runRequestTrailers(0, filters_.size());
}

void ActiveStream::runRequestTrailers(size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (filters_[i]->onRequestTrailers(pendingRequestTrailers_) == FilterStatus::kStopIteration) {
      return;
    }
    if (finished_ || responseComplete_) return;
  }
}

void ActiveStream::continueRequest() {
  if (!requestStopped_ || finished_ || responseComplete_) return;
  requestStopped_ = false;
  size_t seen = requestStoppedAt_ + 1;  // filters that have seen what is buffered
  runRequestHeaders(seen);
  if (finished_ || responseComplete_) return;
  bool hasData = !pendingRequestData_.empty() || pendingRequestEnd_;
  bool dataEnd = pendingRequestEnd_ && !hasPendingRequestTrailers_;
  if (requestStopped_) {
    // Held again further on: the filters in between see what is buffered so far.
    size_t upTo = requestStoppedAt_ + 1;
    if (hasData) {
      std::string copy = pendingRequestData_;
      runRequestData(copy, dataEnd, seen, upTo);
    }
    if (hasPendingRequestTrailers_ && !finished_ && !responseComplete_) {
      runRequestTrailers(seen, upTo);
    }
    return;
  }
  if (hasData) {
    std::string data;
    data.swap(pendingRequestData_);
    runRequestData(data, dataEnd, seen, filters_.size());
  }
  if (hasPendingRequestTrailers_ && !finished_ && !responseComplete_) {
    hasPendingRequestTrailers_ = false;
    runRequestTrailers(seen, filters_.size());
  }
  if (requestReadPausedForBuffer_) {
    requestReadPausedForBuffer_ = false;
    encoder_.readDisable(false);
  }
}

void ActiveStream::encodeHeaders(ResponseHead& head, bool endStream) {
  if (finished_ || responseStarted_) return;
  response_ = std::move(head);
  responseHeadersEnd_ = endStream;
  runResponseHeaders(filters_.size());
}

void ActiveStream::runResponseHeaders(size_t from) {
  // Response events run from the last filter to the first.
  for (size_t i = from; i-- > 0;) {
    if (filters_[i]->onResponseHeaders(response_, responseHeadersEnd_) ==
            FilterStatus::kStopIteration &&
        i > 0) {
      responseStopped_ = true;
      responseStoppedAt_ = i;
      return;
    }
    if (finished_) return;
  }
  responseStarted_ = true;
  info_.status = response_.status;
  if (info_.grpc) readGrpcStatus(response_.headers, info_);
  if (responseHeadersEnd_) responseComplete_ = true;
  encoder_.encodeHeaders(response_, responseHeadersEnd_);
  if (responseComplete_) finishStream();
}

void ActiveStream::encodeData(std::string& data, bool endStream) {
  if (finished_ || responseComplete_) return;
  if (responseStopped_) {
    pendingResponseData_.append(data);
    pendingResponseEnd_ = endStream;
    return;
  }
  runResponseData(data, endStream);
}

void ActiveStream::runResponseData(std::string& data, bool endStream) {
  for (size_t i = filters_.size(); i-- > 0;) {
    if (filters_[i]->onResponseData(data, endStream) == FilterStatus::kStopIteration) return;
    if (finished_) return;
  }
  info_.responseBytes += data.size();
  if (endStream) responseComplete_ = true;
  encoder_.encodeData(data, endStream);
  if (responseComplete_) finishStream();
}

void ActiveStream::encodeTrailers(HeaderMap& trailers) {
  if (finished_ || responseComplete_) return;
  pendingResponseTrailers_ = std::move(trailers);
  if (responseStopped_) {
    hasPendingResponseTrailers_ = true;
    return;
  }
  runResponseTrailers();
}

void ActiveStream::runResponseTrailers() {
  for (size_t i = filters_.size(); i-- > 0;) {
    if (filters_[i]->onResponseTrailers(pendingResponseTrailers_) == FilterStatus::kStopIteration) {
      return;
    }
    if (finished_) return;
  }
  responseComplete_ = true;
  if (info_.grpc) readGrpcStatus(pendingResponseTrailers_, info_);
  encoder_.encodeTrailers(pendingResponseTrailers_);
  finishStream();
}

void ActiveStream::continueResponse() {
  if (!responseStopped_ || finished_) return;
  responseStopped_ = false;
  runResponseHeaders(responseStoppedAt_);
  if (responseStopped_ || finished_ || responseComplete_) return;
  if (!pendingResponseData_.empty() || pendingResponseEnd_) {
    std::string data;
    data.swap(pendingResponseData_);
    runResponseData(data, pendingResponseEnd_ && !hasPendingResponseTrailers_);
  }
  if (hasPendingResponseTrailers_ && !finished_) {
    hasPendingResponseTrailers_ = false;
    runResponseTrailers();
  }
}

void ActiveStream::sendLocalReply(int status, std::string_view body, Reason reason,
                                  const HeaderMap* extra) {
  if (finished_ || responseComplete_) return;
  info_.reason = reason;
  if (responseStarted_) {
    // Too late for a reply: the client already has a status line. Abort instead.
    resetStream();
    return;
  }
  responseStopped_ = false;
  pendingResponseData_.clear();
  ResponseHead head;
  head.status = status;
  if (extra) {
    for (const auto& f : *extra) head.headers.add(f.name, f.value);
  }
  if (info_.grpc) {
    // gRPC clients read the outcome from grpc-status, not the HTTP status: a trailers-only
    // response (one HEADERS frame that ends the stream).
    head.status = 200;
    head.headers.set("content-type", "application/grpc");
    head.headers.set("grpc-status", std::to_string(grpcStatusFor(reason, status)));
    head.headers.set("grpc-message", grpcMessage(body));
    head.headers.set("x-tether-reason", std::string(reasonName(reason)));
    response_ = std::move(head);
    responseHeadersEnd_ = true;
    runResponseHeaders(filters_.size());
    return;
  }
  if (!head.headers.get("content-type") && !body.empty()) {
    head.headers.add("content-type", "text/plain");
  }
  head.headers.set("x-tether-reason", std::string(reasonName(reason)));
  head.headers.set("content-length", std::to_string(body.size()));
  bool bodyless = body.empty() || request_.isHead();
  response_ = std::move(head);
  responseHeadersEnd_ = bodyless;
  runResponseHeaders(filters_.size());
  if (!bodyless && !finished_ && !responseComplete_) {
    std::string data(body);
    runResponseData(data, true);
  }
}

void ActiveStream::setRequestReadPaused(bool paused) {
  if (finished_) return;
  if (paused) {
    ++requestPausedByFilters_;
    encoder_.readDisable(true);
  } else if (requestPausedByFilters_ > 0) {
    --requestPausedByFilters_;
    encoder_.readDisable(false);
  }
}

void ActiveStream::resetStream() {
  if (finished_) return;
  if (info_.reason == Reason::kNone) info_.reason = Reason::kUpstreamReset;
  if (info_.status == 0) info_.status = defaultStatus(info_.reason);
  finishStream();
  encoder_.resetFromStream();
}

void ActiveStream::addUpstreamHook(UpstreamHook& hook) {
  // Two are enough today (signing, and room for one more); a third is a programming error.
  if (hookCount_ == hooks_.size()) fatal("too many upstream hooks on one stream");
  hooks_[hookCount_++] = &hook;
}

void ActiveStream::runUpstreamHooks(RequestHead& head, std::string_view authority) {
  for (size_t i = 0; i < hookCount_; ++i) hooks_[i]->onUpstreamAttempt(head, authority);
}

void ActiveStream::switchToTunnel() { encoder_.enterTunnel(); }

void ActiveStream::onDownstreamWatermark(bool aboveHigh) {
  for (auto& f : filters_) f->onResponseWatermark(aboveHigh);
}

void ActiveStream::onDownstreamReset() {
  if (finished_) return;
  // 499 is nginx's "client closed request": no status was sent, but the record needs one.
  if (info_.status == 0) info_.status = 499;
  finishStream();
}

void ActiveStream::finishStream() {
  if (finished_) return;
  finished_ = true;
  while (requestPausedByFilters_ > 0) {
    --requestPausedByFilters_;
    encoder_.readDisable(false);
  }
  if (requestReadPausedForBuffer_) {
    requestReadPausedForBuffer_ = false;
    encoder_.readDisable(false);
  }
  for (auto& f : filters_) f->onStreamComplete(info_);
  for (auto& f : filters_) f->onDestroy();
  if (responseComplete_) encoder_.onStreamComplete();
}

}  // namespace tether::proxy
