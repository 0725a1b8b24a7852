#include "filters/lane/lane_filter.h"

#include "proxy/worker/worker.h"

namespace tether::filters {

namespace {

bool validLane(std::string_view v) {
  if (v.empty() || v.size() > 63) return false;
  for (char c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string laneOf(const proxy::RequestHead& head) {
  if (const proxy::HeaderString* v = head.headers.get(kLaneHeader)) {
    return validLane(*v) ? std::string(*v) : std::string();
  }
  const proxy::HeaderString* baggage = head.headers.get("baggage");
  if (!baggage) return "";
  // W3C baggage: "key=value;props,key2=value2".
  std::string_view rest = *baggage;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view member = trim(rest.substr(0, comma));
    size_t eq = member.find('=');
    if (eq != std::string_view::npos && trim(member.substr(0, eq)) == kLaneBaggageKey) {
      std::string_view value = trim(member.substr(eq + 1));
      value = trim(value.substr(0, value.find(';')));
      return validLane(value) ? std::string(value) : std::string();
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return "";
}

std::string withLaneBaggage(std::string_view baggage, std::string_view lane) {
  std::string out;
  std::string_view rest = baggage;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view member = trim(rest.substr(0, comma));
    size_t eq = member.find('=');
    bool ours = eq != std::string_view::npos && trim(member.substr(0, eq)) == kLaneBaggageKey;
    if (!member.empty() && !ours) {
      if (!out.empty()) out += ',';
      out += member;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!out.empty()) out += ',';
  out += kLaneBaggageKey;
  out += '=';
  out += lane;
  return out;
}

proxy::FilterStatus LaneFilter::onRequestHeaders(proxy::RequestHead& head, bool) {
  proxy::StreamInfo& info = callbacks_->info();
  bool outbound = info.direction == config::Direction::kOutbound;
  std::string lane = laneOf(head);
  if (lane.empty() && outbound) {
    if (const auto* rule = table_->matchLabel(head, callbacks_->worker().random())) {
      lane = rule->label;
    }
  }
  if (lane.empty()) return proxy::FilterStatus::kContinue;
  // Metric labels come from config: a lane nobody configured is counted as "other".
  callbacks_->worker().stats().countPair(callbacks_->worker().stats().laneRequests,
                                         config::toString(info.direction),
                                         table_->knownLane(lane) ? lane : "other");
  if (outbound) {
    head.headers.set(kLaneHeader, lane);
    const proxy::HeaderString* baggage = head.headers.get("baggage");
    head.headers.set("baggage", withLaneBaggage(baggage ? *baggage : "", lane));
  }
  info.lane = std::move(lane);
  return proxy::FilterStatus::kContinue;
}

}  // namespace tether::filters
