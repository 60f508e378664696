/*
 * nuse_ipc.node: the socket calls the daemon's IPC server needs and Node does not
 * offer (core/src/ipc/native.ts loads it):
 *   peerCred(fd)            -> { pid, uid, gid }  (SO_PEERCRED of a connected unix socket)
 *   peerName(fd)            -> the peer's abstract name without the leading NUL, or null
 *   connectAbstract(from, to) -> a new non-blocking unix stream fd bound to the abstract
 *                              name `from` and connected to the abstract name `to`
 *   hungUp(fd)              -> whether the peer of a unix stream closed it for good (POLLHUP),
 *                              as opposed to shutdown(SHUT_WR) (only POLLRDHUP): close, not half-close
 *   peerClosed(fd)          -> whether the peer of a unix stream was released (its last fd
 *                              closed), also after it shut down both directions (sock_diag)
 * Errors are thrown as Error objects with `code` set to the errno name (EAGAIN, ECONNREFUSED...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/stat.h>
#include <unistd.h>

static napi_value throw_errno(napi_env env, int err, const char *what) {
  const char *code = strerrorname_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, code != NULL ? code : "EIO", msg);
  return NULL;
}

static int arg_fd(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return -1;
  }
  return 0;
}

static napi_value set_int(napi_env env, napi_value obj, const char *key, int64_t v) {
  napi_value n;
  napi_create_int64(env, v, &n);
  napi_set_named_property(env, obj, key, n);
  return obj;
}

static napi_value peer_cred(napi_env env, napi_callback_info info) {
  int fd;
  if (arg_fd(env, info, &fd) < 0) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, errno, "SO_PEERCRED");
  napi_value obj;
  napi_create_object(env, &obj);
  set_int(env, obj, "pid", cred.pid);
  set_int(env, obj, "uid", cred.uid);
  set_int(env, obj, "gid", cred.gid);
  return obj;
}

static napi_value peer_name(napi_env env, napi_callback_info info) {
  int fd;
  if (arg_fd(env, info, &fd) < 0) return NULL;
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  napi_value out;
  if (getpeername(fd, (struct sockaddr *)&a, &len) < 0) return throw_errno(env, errno, "getpeername");
  size_t off = offsetof(struct sockaddr_un, sun_path);
  if (a.sun_family != AF_UNIX || len <= off + 1 || a.sun_path[0] != '\0') {
    napi_get_null(env, &out);
    return out;
  }
  napi_create_string_latin1(env, a.sun_path + 1, len - off - 1, &out);
  return out;
}

static int abstract_addr(napi_env env, napi_value v, struct sockaddr_un *a, socklen_t *len) {
  char name[sizeof a->sun_path];
  size_t n;
  if (napi_get_value_string_latin1(env, v, name, sizeof name, &n) != napi_ok || n == 0 ||
      n >= sizeof a->sun_path - 1) {
    napi_throw_type_error(env, NULL, "expected an abstract socket name (1..106 characters)");
    return -1;
  }
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path + 1, name, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  return 0;
}

static napi_value connect_abstract(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "expected (from, to)");
    return NULL;
  }
  struct sockaddr_un from, to;
  socklen_t from_len, to_len;
  if (abstract_addr(env, argv[0], &from, &from_len) < 0 || abstract_addr(env, argv[1], &to, &to_len) < 0) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  /* A unix connect completes at once (or EAGAIN when the listener's backlog is full). */
  if (bind(fd, (struct sockaddr *)&from, from_len) < 0 || connect(fd, (struct sockaddr *)&to, to_len) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "connect");
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

/*
 * When the peer of a unix stream is released (its last fd closed), the kernel shuts both
 * directions of our end (unix_release_sock: SHUTDOWN_MASK), which poll reports as
 * POLLHUP; shutdown(SHUT_WR) by the peer only shuts our receiving side (POLLRDHUP). This
 * tells the daemon a program's close(2) from its shutdown(2).
 */
static napi_value hung_up(napi_env env, napi_callback_info info) {
  int fd;
  if (arg_fd(env, info, &fd) < 0) return NULL;
  struct pollfd p = {.fd = fd, .events = 0, .revents = 0};
  int r;
  do r = poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, errno, "poll");
  napi_value out;
  napi_get_boolean(env, (p.revents & (POLLHUP | POLLERR)) != 0, &out);
  return out;
}

/*
 * After the peer shut down both directions, POLLHUP shows already: only the kernel's
 * socket diagnostics tell a close. UNIX_DIAG_PEER of our end gives the peer's inode, and
 * 0 once the peer was released (its socket is orphaned: sock_i_ino is 0). One netlink
 * request, about 10 µs.
 */
static napi_value peer_closed(napi_env env, napi_callback_info info) {
  int fd;
  if (arg_fd(env, info, &fd) < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) < 0) return throw_errno(env, errno, "fstat");
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return throw_errno(env, errno, "socket(NETLINK_SOCK_DIAG)");
  struct {
    struct nlmsghdr nlh;
    struct unix_diag_req req;
  } msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_ino = (unsigned)st.st_ino;
  msg.req.udiag_show = UDIAG_SHOW_PEER;
  msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0U;
  struct sockaddr_nl to = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(nl, &msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    close(nl);
    return throw_errno(env, e, "sock_diag request");
  }
  union {
    struct nlmsghdr h;
    char bytes[4096];
  } in;
  do n = recv(nl, &in, sizeof in, 0);
  while (n < 0 && errno == EINTR);
  int e = errno;
  close(nl);
  if (n < 0) return throw_errno(env, e, "sock_diag reply");
  struct nlmsghdr *h = &in.h;
  if (!NLMSG_OK(h, (size_t)n)) return throw_errno(env, EPROTO, "sock_diag reply");
  if (h->nlmsg_type == NLMSG_ERROR) {
    const struct nlmsgerr *err = NLMSG_DATA(h);
    return throw_errno(env, err->error < 0 ? -err->error : EPROTO, "sock_diag");
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
    return throw_errno(env, EPROTO, "sock_diag reply");
  const struct unix_diag_msg *m = NLMSG_DATA(h);
  const struct rtattr *a = (const struct rtattr *)(m + 1);
  int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
  uint32_t peer = 0;
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof peer) memcpy(&peer, RTA_DATA(a), sizeof peer);
  napi_value out;
  napi_get_boolean(env, peer == 0, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"peerCred", NULL, peer_cred, NULL, NULL, NULL, napi_default, NULL},
      {"peerName", NULL, peer_name, NULL, NULL, NULL, napi_default, NULL},
      {"connectAbstract", NULL, connect_abstract, NULL, NULL, NULL, napi_default, NULL},
      {"hungUp", NULL, hung_up, NULL, NULL, NULL, napi_default, NULL},
      {"peerClosed", NULL, peer_closed, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
