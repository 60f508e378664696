/*
 * nuse_ipc.node: the socket calls the daemon's IPC server needs and Node does not
 * offer (core/src/ipc/native.ts loads it):
 *   peerCred(fd)            -> { pid, uid, gid }  (SO_PEERCRED of a connected unix socket)
 *   peerName(fd)            -> the peer's abstract name without the leading NUL, or null
 *   connectAbstract(from, to) -> a new non-blocking unix stream fd bound to the abstract
 *                              name `from` and connected to the abstract name `to`
 *   hungUp(fd)              -> whether the peer of a unix stream closed it for good (POLLHUP),
 *                              as opposed to shutdown(SHUT_WR) (only POLLRDHUP): close, not half-close
 * Errors are thrown as Error objects with `code` set to the errno name (EAGAIN, ECONNREFUSED...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"peerCred", NULL, peer_cred, NULL, NULL, NULL, napi_default, NULL},
      {"peerName", NULL, peer_name, NULL, NULL, NULL, napi_default, NULL},
      {"connectAbstract", NULL, connect_abstract, NULL, NULL, NULL, napi_default, NULL},
      {"hungUp", NULL, hung_up, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
