// The HTTP/2 server's frame checks: the protocol rules nghttp2 leaves to its user, read off
// the frame headers before nghttp2 sees them, and the budgets that catch abusive frames.

#include <algorithm>

#include "proxy/downstream/http2_server.h"

namespace tether::proxy {

bool FrameBudget::take(uint64_t nowMs) {
  if (last_ != 0 && nowMs > last_) {
    tokens_ = std::min<double>(burst_, tokens_ + (nowMs - last_) * perSecond_ / 1000.0);
  }
  last_ = nowMs;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

/// One request stream. Lives from its first HEADERS frame until nghttp2 closes it; its
/// ActiveStream may end earlier (response done) and is released then.
const Http2ServerSession::ClientClosed* Http2ServerSession::findClientClosed(uint32_t id) const {
  for (const ClientClosed& c : clientClosed_) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

void Http2ServerSession::noteClientClosed(uint32_t id, bool reset) {
  if (id <= maxStreamId_) {  // a stream opened by this frame is not in the list yet
    for (ClientClosed& c : clientClosed_) {
      if (c.id == id) {
        c.reset = c.reset || reset;
        return;
      }
    }
  }
  clientClosed_[clientClosedNext_] = {id, reset};
  clientClosedNext_ = (clientClosedNext_ + 1) % clientClosed_.size();
}

size_t Http2ServerSession::scanFrames(const char* data, size_t len) {
  // Streams opened by this batch are still open while nghttp2 reads it (nothing is sent in
  // between), so a frame after their END_STREAM is for nghttp2 to answer.
  const uint32_t batchMaxId = maxStreamId_;
  size_t i = 0;
  size_t skip = std::min(prefaceLeft_, len);
  prefaceLeft_ -= skip;
  i += skip;
  while (i < len) {
    if (payloadLeft_ > 0) {
      size_t n = std::min(payloadLeft_, len - i);
      // A PRIORITY frame's stream dependency (its first 4 payload bytes) is looked at too.
      for (size_t k = 0; k < n && priorityHave_ < 4; ++k)
        priorityDep_[priorityHave_++] = data[i + k];
      if (priorityHave_ == 4) {
        priorityHave_ = 5;  // done with this frame
        uint32_t dep = ((uint32_t{priorityDep_[0]} & 0x7f) << 24) |
                       (uint32_t{priorityDep_[1]} << 16) | (uint32_t{priorityDep_[2]} << 8) |
                       priorityDep_[3];
        if (dep == priorityStream_) streamErrors_.emplace_back(dep, NGHTTP2_PROTOCOL_ERROR);
      }
      payloadLeft_ -= n;
      i += n;
      continue;
    }
    size_t frameStart = i;
    while (frameHeaderHave_ < 9 && i < len) frameHeader_[frameHeaderHave_++] = data[i++];
    if (frameHeaderHave_ < 9) break;
    frameHeaderHave_ = 0;
    const uint8_t* h = frameHeader_;
    payloadLeft_ = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
    uint32_t id =
        ((uint32_t{h[5]} & 0x7f) << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8];
    uint8_t type = h[3];
    // nghttp2 ignores PRIORITY frames (Tether announces SETTINGS_NO_RFC7540_PRIORITIES),
    // but a stream depending on itself is still a stream error (RFC 9113 §5.3.1), and one
    // on stream 0 a connection error (§6.3).
    if (type == NGHTTP2_PRIORITY && id == 0) {
      scanError_ = NGHTTP2_PROTOCOL_ERROR;
      return frameStart;
    }
    // nghttp2 skips PRIORITY frames unseen: counted here, like the other control frames.
    if (type == NGHTTP2_PRIORITY && !controlBudget_.take(uv_now(worker_.loop()))) {
      scanAbuse_ = "control_frame_flood";
      return frameStart;
    }
    priorityHave_ = type == NGHTTP2_PRIORITY && payloadLeft_ == 5 ? 0 : 5;
    priorityStream_ = id;
    if (id == 0 || id % 2 == 0) continue;  // nghttp2 checks those
    if (type == NGHTTP2_RST_STREAM) {
      noteClientClosed(id, true);
      continue;
    }
    if (type != NGHTTP2_HEADERS && type != NGHTTP2_DATA) continue;
    if (id <= maxStreamId_) {
      if (const ClientClosed* c = findClientClosed(id)) {
        if (c->reset) {
          // nghttp2 closed the stream on the RST_STREAM and will skip this frame (still
          // decoding a header block); the answer is a stream error.
          streamErrors_.emplace_back(id, NGHTTP2_STREAM_CLOSED);
        } else if (id <= batchMaxId &&
                   !nghttp2_session_find_stream(session_, static_cast<int32_t>(id))) {
          // Half-closed streams nghttp2 answers itself; this one is closed.
          scanError_ = NGHTTP2_STREAM_CLOSED;
          return frameStart;
        }
      }
    }
    if (h[4] & NGHTTP2_FLAG_END_STREAM) noteClientClosed(id, false);
    if (type != NGHTTP2_HEADERS) continue;
    if (id > maxStreamId_) {
      uint32_t firstSkipped = maxStreamId_ == 0 ? 1 : maxStreamId_ + 2;
      if (id > firstSkipped) {
        if (skippedIds_.size() == 64) skippedIds_.erase(skippedIds_.begin());
        skippedIds_.emplace_back(firstSkipped, id - 2);
      }
      maxStreamId_ = id;
      continue;
    }
    for (const auto& [lo, hi] : skippedIds_) {
      if (id >= lo && id <= hi) {
        // A stream id that was skipped is closed; opening it now is a connection error.
        scanError_ = NGHTTP2_PROTOCOL_ERROR;
        return frameStart;
      }
    }
  }
  return len;
}

}  // namespace tether::proxy
