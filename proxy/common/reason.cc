#include "proxy/common/reason.h"

namespace tether::proxy {

std::string_view reasonName(Reason r) {
  switch (r) {
    case Reason::kNone:
      return "";
    case Reason::kNoRoute:
      return "no_route";
    case Reason::kNoHealthyUpstream:
      return "no_healthy_upstream";
    case Reason::kUpstreamConnectFailure:
      return "upstream_connect_failure";
    case Reason::kUpstreamReset:
      return "upstream_reset";
    case Reason::kUpstreamTimeout:
      return "upstream_timeout";
    case Reason::kDeadlineExceeded:
      return "deadline_exceeded";
    case Reason::kRateLimited:
      return "rate_limited";
    case Reason::kCircuitOpen:
      return "circuit_open";
    case Reason::kOverflow:
      return "overflow";
    case Reason::kUnauthenticated:
      return "unauthenticated";
    case Reason::kForbidden:
      return "forbidden";
    case Reason::kBadRequest:
      return "bad_request";
    case Reason::kHeadersTooLarge:
      return "headers_too_large";
    case Reason::kBodyTooLarge:
      return "body_too_large";
    case Reason::kDraining:
      return "draining";
    case Reason::kFailsafe:
      return "failsafe";
    case Reason::kFaultInjected:
      return "fault_injected";
    case Reason::kRequestTimeout:
      return "request_timeout";
  }
  return "";
}

int defaultStatus(Reason r) {
  switch (r) {
    case Reason::kNone:
      return 200;
    case Reason::kNoRoute:
      return 404;
    case Reason::kNoHealthyUpstream:
      return 503;
    case Reason::kUpstreamConnectFailure:
      return 502;
    case Reason::kUpstreamReset:
      return 502;
    case Reason::kUpstreamTimeout:
      return 504;
    case Reason::kDeadlineExceeded:
      return 504;
    case Reason::kRateLimited:
      return 429;
    case Reason::kCircuitOpen:
      return 503;
    case Reason::kOverflow:
      return 503;
    case Reason::kUnauthenticated:
      return 401;
    case Reason::kForbidden:
      return 403;
    case Reason::kBadRequest:
      return 400;
    case Reason::kHeadersTooLarge:
      return 431;
    case Reason::kBodyTooLarge:
      return 413;
    case Reason::kDraining:
      return 503;
    case Reason::kFailsafe:
      return 200;
    case Reason::kFaultInjected:
      return 503;
    case Reason::kRequestTimeout:
      return 408;
  }
  return 500;
}

int grpcStatusFor(Reason reason, int status) {
  enum : int {
    kInternal = 13,
    kUnavailable = 14,
    kDeadlineExceeded = 4,
    kResourceExhausted = 8,
    kUnauthenticated = 16,
    kPermissionDenied = 7,
    kUnimplemented = 12,
    kUnknown = 2,
  };
  switch (reason) {
    case Reason::kRateLimited:
    case Reason::kHeadersTooLarge:
    case Reason::kBodyTooLarge:
      return kResourceExhausted;
    case Reason::kUpstreamTimeout:
    case Reason::kDeadlineExceeded:
    case Reason::kRequestTimeout:
      return kDeadlineExceeded;
    case Reason::kNoHealthyUpstream:
    case Reason::kUpstreamConnectFailure:
    case Reason::kUpstreamReset:
    case Reason::kCircuitOpen:
    case Reason::kOverflow:
    case Reason::kDraining:
      return kUnavailable;
    case Reason::kUnauthenticated:
      return kUnauthenticated;
    case Reason::kForbidden:
      return kPermissionDenied;
    case Reason::kNoRoute:
      return kUnimplemented;
    case Reason::kBadRequest:
      return kInternal;
    default:
      break;
  }
  // Failsafe and fault replies carry a configured HTTP status: gRPC's HTTP mapping.
  switch (status) {
    case 400:
      return kInternal;
    case 401:
      return kUnauthenticated;
    case 403:
      return kPermissionDenied;
    case 404:
      return kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return kUnavailable;
    default:
      return kUnknown;
  }
}

std::string_view statusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace tether::proxy
