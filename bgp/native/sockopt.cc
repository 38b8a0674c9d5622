// Socket options Node.js cannot set: TCP MD5 signatures (RFC 2385), GTSM / TTL security
// (RFC 5082: IP_TTL + IP_MINTTL, IPV6_UNICAST_HOPS + IPV6_MINHOPCOUNT) and TCP_USER_TIMEOUT,
// on sockets Node already owns (by fd), plus a non-blocking connect on a socket created here
// so the MD5 key is in place before the SYN leaves (the fd is then handed to net.Socket).
#include <napi.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <malloc.h>

#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif

namespace {

bool ParseAddr(const std::string& text, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof(*ss));
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, text.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, text.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Returns 0 or errno. An empty key removes the key for that peer.
int SetMd5(int fd, const std::string& peer, const std::string& key) {
  struct tcp_md5sig sig;
  memset(&sig, 0, sizeof(sig));
  socklen_t alen = 0;
  sockaddr_storage ss;
  if (!ParseAddr(peer, 0, &ss, &alen)) return EINVAL;
  // A dual-stack (AF_INET6) listening socket sees IPv4 peers as v4-mapped addresses.
  sockaddr_storage own;
  socklen_t olen = sizeof(own);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&own), &olen) == 0 && own.ss_family == AF_INET6 &&
      ss.ss_family == AF_INET) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    sockaddr_in6 m;
    memset(&m, 0, sizeof(m));
    m.sin6_family = AF_INET6;
    m.sin6_addr.s6_addr[10] = 0xff;
    m.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&m.sin6_addr.s6_addr[12], &s4->sin_addr, 4);
    memcpy(&sig.tcpm_addr, &m, sizeof(m));
  } else {
    memcpy(&sig.tcpm_addr, &ss, alen);
  }
  if (key.size() > TCP_MD5SIG_MAXKEYLEN) return EINVAL;
  sig.tcpm_keylen = key.size();
  memcpy(sig.tcpm_key, key.data(), key.size());
  if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof(sig)) != 0) {
    // Deleting a key that is not there is not an error.
    if (key.empty() && errno == ENOENT) return 0;
    return errno;
  }
  return 0;
}

int SocketFamily(int fd) {
  sockaddr_storage own;
  socklen_t olen = sizeof(own);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&own), &olen) != 0) return -1;
  return own.ss_family;
}

// GTSM: send with TTL 255, accept only TTL >= 256 - hops. hops 0 turns it off.
int SetTtlSecurity(int fd, int hops, bool v4peer) {
  int fam = SocketFamily(fd);
  if (fam < 0) return errno;
  int ttl = hops > 0 ? 255 : 64;
  int minttl = hops > 0 ? 256 - hops : 0;
  if (fam == AF_INET || v4peer) {
    if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) != 0 && fam == AF_INET) return errno;
    if (setsockopt(fd, IPPROTO_IP, IP_MINTTL, &minttl, sizeof(minttl)) != 0 && fam == AF_INET) return errno;
  }
  if (fam == AF_INET6) {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)) != 0) return errno;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, &minttl, sizeof(minttl)) != 0) return errno;
  }
  return 0;
}

Napi::Value Err(Napi::Env env, int e) { return Napi::Number::New(env, e); }

// setMd5(fd, peerAddress, key) -> errno (0 = ok)
Napi::Value JsSetMd5(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsString())
    return Err(env, EINVAL);
  return Err(env, SetMd5(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::String>().Utf8Value(),
                         info[2].As<Napi::String>().Utf8Value()));
}

// setTtlSecurity(fd, hops, v4peer) -> errno
Napi::Value JsSetTtlSecurity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber()) return Err(env, EINVAL);
  return Err(env, SetTtlSecurity(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(),
                                 info[2].ToBoolean().Value()));
}

// setUserTimeout(fd, ms) -> errno
Napi::Value JsSetUserTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return Err(env, EINVAL);
  unsigned int ms = info[1].As<Napi::Number>().Uint32Value();
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Err(env, setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) == 0 ? 0 : errno);
}

// connect(peerAddress, peerPort, localAddress|'', md5Key|'', ttlHops) -> fd (>= 0) or -errno.
// The socket is non-blocking and the connect is in progress; poll it with connectStatus.
Napi::Value JsConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) return Err(env, -EINVAL);
  std::string peer = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  std::string local = info[2].As<Napi::String>().Utf8Value();
  std::string key = info[3].As<Napi::String>().Utf8Value();
  int hops = info[4].As<Napi::Number>().Int32Value();
  sockaddr_storage ps;
  socklen_t plen;
  if (!ParseAddr(peer, port, &ps, &plen)) return Err(env, -EINVAL);
  int fd = socket(ps.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return Err(env, -errno);
  int e = 0;
  if (!local.empty()) {
    sockaddr_storage ls;
    socklen_t llen;
    if (!ParseAddr(local, 0, &ls, &llen) || ls.ss_family != ps.ss_family) {
      e = EINVAL;
    } else if (bind(fd, reinterpret_cast<sockaddr*>(&ls), llen) != 0) {
      e = errno;
    }
  }
  if (!e && !key.empty()) e = SetMd5(fd, peer, key);
  if (!e && hops > 0) e = SetTtlSecurity(fd, hops, ps.ss_family == AF_INET);
  if (!e && connect(fd, reinterpret_cast<sockaddr*>(&ps), plen) != 0 && errno != EINPROGRESS) e = errno;
  if (e) {
    close(fd);
    return Err(env, -e);
  }
  return Napi::Number::New(env, fd);
}

// connectStatus(fd) -> 1 connected, 0 in progress, -errno failed
Napi::Value JsConnectStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  pollfd p = {fd, POLLOUT, 0};
  int r = poll(&p, 1, 0);
  if (r < 0) return Err(env, -errno);
  if (r == 0) return Err(env, 0);
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) return Err(env, -errno);
  return Err(env, soerr ? -soerr : 1);
}

// close(fd) for a socket never handed to Node.
Napi::Value JsClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

// trimMemory(): return freed malloc memory to the OS after a large table load.
Napi::Value JsTrim(const Napi::CallbackInfo& info) {
  malloc_trim(0);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("trimMemory", Napi::Function::New(env, JsTrim));
  exports.Set("setMd5", Napi::Function::New(env, JsSetMd5));
  exports.Set("setTtlSecurity", Napi::Function::New(env, JsSetTtlSecurity));
  exports.Set("setUserTimeout", Napi::Function::New(env, JsSetUserTimeout));
  exports.Set("connect", Napi::Function::New(env, JsConnect));
  exports.Set("connectStatus", Napi::Function::New(env, JsConnectStatus));
  exports.Set("close", Napi::Function::New(env, JsClose));
  return exports;
}

}  // namespace

NODE_API_MODULE(petrel_sockopt, Init)
