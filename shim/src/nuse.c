/*
 * libnuse.so: the preload library that hands a program's TCP sockets to the nuse daemon
 * (DESIGN.md, decision 1). `nuse run -- CMD` sets LD_PRELOAD and NUSE_SOCKET.
 *
 * Every TCP socket the program creates is a real AF_UNIX stream socket, bound to an
 * abstract name that identifies it ("nuse/<4|6>/<proto>/<pid>.<n>"). connect() joins it
 * to the daemon, which pumps bytes between it and a TCP connection of the userspace
 * stack; listen() makes it an AF_UNIX listener the daemon connects to once per accepted
 * TCP connection (from a socket bound to "nuse/a/..."). Reads, writes, poll, epoll,
 * dup and fork therefore work natively; only the calls that change protocol state are
 * interposed here, and they ask the daemon over a per-process control connection
 * (length-prefixed msgpack; see docs/shim.md).
 *
 * The shim keeps no table of its sockets: the kernel's socket names say what each fd is,
 * so sockets survive dup, fork, exec and fd passing.
 *
 * The read family is interposed for EOF (and ECONNRESET) only (see eof_or_error): a TCP
 * reset must read as ECONNRESET, which no way of closing a unix stream from the daemon's
 * side produces. shutdown is interposed to tell the daemon first (SHUT_RD: it must stop
 * writing to the stream), close only for listeners and SO_LINGER {1, N > 0}.
 *
 * Policy (which destinations stay on the kernel, the MPTCP upgrade) is applied by the
 * daemon: the shim sends the program's own (NUSE_KERNEL, NUSE_ONLY, NUSE_MPTCP) in its
 * hello; every TCP socket is a unix stream whatever its destination.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "msgpack.h"

#define EXPORT __attribute__((visibility("default")))
#define PROTOCOL_VERSION 1
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
/* The filler bytes of a non-blocking connect (see nuse_connect). */
#define FILL_CHUNK 512
/* A SO_SNDBUF at or below this is the filler's small buffer, to be restored. */
#define SMALL_SNDBUF 16384
/* How long a control request may wait for its reply before the call fails (ETIMEDOUT). */
#define CTL_TIMEOUT_MS 30000
#define NAME_MAX_LEN 100
/* The largest option value exchanged as bytes: struct tcp_info (232 bytes today) with room to grow. */
#define OPT_DATA_MAX 256
/* The most bytes of a setsockopt value sent as bytes (TCP_CONGESTION's name needs 16). */
#define OPT_SEND_MAX 64
#ifndef TCP_CONGESTION
#define TCP_CONGESTION 13
#endif

/* ------------------------------------------------------------------ real symbols */

static int (*real_socket)(int, int, int);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static int (*real_close)(int);
static int (*real_shutdown)(int, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_read_chk)(int, void *, size_t, size_t);
static ssize_t (*real_recv_chk)(int, void *, size_t, size_t, int);
static ssize_t (*real_recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);

static void resolve(void) {
  /* Resolved once, in the constructor: dlsym may allocate, which the hooks must not. */
  real_socket = dlsym(RTLD_NEXT, "socket");
  real_connect = dlsym(RTLD_NEXT, "connect");
  real_bind = dlsym(RTLD_NEXT, "bind");
  real_listen = dlsym(RTLD_NEXT, "listen");
  real_accept = dlsym(RTLD_NEXT, "accept");
  real_accept4 = dlsym(RTLD_NEXT, "accept4");
  real_getsockname = dlsym(RTLD_NEXT, "getsockname");
  real_getpeername = dlsym(RTLD_NEXT, "getpeername");
  real_setsockopt = dlsym(RTLD_NEXT, "setsockopt");
  real_getsockopt = dlsym(RTLD_NEXT, "getsockopt");
  real_shutdown = dlsym(RTLD_NEXT, "shutdown");
  real_read = dlsym(RTLD_NEXT, "read");
  real_readv = dlsym(RTLD_NEXT, "readv");
  real_recv = dlsym(RTLD_NEXT, "recv");
  real_recvfrom = dlsym(RTLD_NEXT, "recvfrom");
  real_recvmsg = dlsym(RTLD_NEXT, "recvmsg");
  real_read_chk = dlsym(RTLD_NEXT, "__read_chk");
  real_recv_chk = dlsym(RTLD_NEXT, "__recv_chk");
  real_recvfrom_chk = dlsym(RTLD_NEXT, "__recvfrom_chk");
  /* Last: ENSURE_RESOLVED tests it, so every pointer above is set once it is. */
  __atomic_store_n(&real_close, (int (*)(int))dlsym(RTLD_NEXT, "close"), __ATOMIC_RELEASE);
}

/* A hook called before our constructor (from another library's constructor) resolves first. */
#define ENSURE_RESOLVED()                                     \
  do {                                                        \
    if (__builtin_expect(real_close == NULL, 0)) resolve();   \
  } while (0)

/* ------------------------------------------------------------------ configuration */

static int enabled;             /* NUSE_SOCKET was set */
static int upgrade_mptcp;       /* NUSE_MPTCP=1: plain TCP sockets become MPTCP */
/*
 * The program's policy (nuse run --kernel/--only): prefix lists the daemon applies at
 * connect and bind (core/src/ipc/policy.ts), sent as they are in the hello. Copied here
 * at start: the hello may be sent long after, when getenv is no longer safe to call.
 */
#define POLICY_MAX 1536
static char policy_kernel[POLICY_MAX + 1], policy_only[POLICY_MAX + 1];
static size_t policy_len; /* both lengths: the hello's buffer grows by this much (see ctl_open) */
static struct sockaddr_un daemon_addr;
static socklen_t daemon_addr_len;

static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;

/* Processes that may open a control connection from a read at EOF: not a vfork child (see eof_or_error). */
static pid_t init_pid, fork_child_pid;
static pid_t ctl_pid;

/*
 * Whether this process may talk to the daemon from a call a vfork child can make (read
 * at EOF, shutdown): a vfork child shares our memory, and opening a control connection
 * there would leave the parent with the child's fd number. Only this process as exec'd,
 * or a fork child (after_fork_in_child ran in it), asks the daemon.
 */
static int may_ask(void) {
  pid_t pid = getpid();
  return pid == init_pid || pid == fork_child_pid || pid == ctl_pid;
}

/*
 * In a child of fork() the lock may have been held by a thread that does not exist
 * there: start it afresh (the child also opens its own control connection, see ctl_open).
 * vfork children do not run this, and take no lock (see close).
 */
static void after_fork_in_child(void) {
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  memcpy(&ctl_lock, &fresh, sizeof fresh);
  fork_child_pid = getpid();
}

__attribute__((constructor)) static void nuse_init(void) {
  resolve();
  init_pid = getpid();
  pthread_atfork(NULL, NULL, after_fork_in_child);
  const char *path = getenv("NUSE_SOCKET");
  if (path == NULL || path[0] == '\0') return;
  if (strlen(path) >= sizeof daemon_addr.sun_path) {
    static const char msg[] = "nuse: NUSE_SOCKET is too long for a unix socket path; nuse is off\n";
    (void)!write(2, msg, sizeof msg - 1);
    return;
  }
  daemon_addr.sun_family = AF_UNIX;
  strcpy(daemon_addr.sun_path, path);
  daemon_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
  const char *m = getenv("NUSE_MPTCP");
  upgrade_mptcp = m != NULL && strcmp(m, "1") == 0;
  const char *k = getenv("NUSE_KERNEL"), *o = getenv("NUSE_ONLY");
  if ((k != NULL && strlen(k) > POLICY_MAX) || (o != NULL && strlen(o) > POLICY_MAX)) {
    static const char msg[] = "nuse: NUSE_KERNEL or NUSE_ONLY is too long; nuse is off\n";
    (void)!write(2, msg, sizeof msg - 1);
    return;
  }
  if (k != NULL) strcpy(policy_kernel, k);
  if (o != NULL) strcpy(policy_only, o);
  policy_len = strlen(policy_kernel) + strlen(policy_only);
  enabled = 1;
}

/* ------------------------------------------------------------------ small helpers */

static void say(const char *a, const char *b, const char *c) {
  /* One line on stderr with write(2): no stdio buffers, no allocation. */
  char line[512];
  size_t n = 0;
  const char *parts[] = {"nuse: ", a, b, c, "\n"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (parts[i] == NULL) continue;
    size_t l = strlen(parts[i]);
    if (l > sizeof line - n) l = sizeof line - n;
    memcpy(line + n, parts[i], l);
    n += l;
  }
  (void)!write(2, line, n);
}

/*
 * The one line a process prints when the daemon is missing: `lost` when it had answered
 * before (the daemon went away), otherwise it never answered (not running).
 */
static void daemon_lost(int lost) {
  static int said;
  if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED)) return;
  if (lost)
    say("lost the connection to the nuse daemon at ", daemon_addr.sun_path,
        "; TCP calls fail from now on (ECONNRESET)");
  else
    say("cannot reach the nuse daemon at ", daemon_addr.sun_path,
        " (not running, or not ours to use); TCP connections fail");
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------ identifying fds */

enum kind { NOT_OURS, OURS_SOCKET, OURS_ACCEPTED };

struct ident {
  enum kind kind;
  int family;          /* AF_INET or AF_INET6: what the program asked for */
  char name[NAME_MAX_LEN + 1]; /* the daemon's key: the socket's name, or the accepted stream's peer name */
};

/* The abstract name of a unix address, NUL-terminated into out; 0 if it is not one of ours. */
static int nuse_name(const struct sockaddr_un *a, socklen_t len, char *out) {
  size_t off = offsetof(struct sockaddr_un, sun_path);
  if (len <= off + 1 || a->sun_family != AF_UNIX || a->sun_path[0] != '\0') return 0;
  size_t n = len - off - 1;
  if (n < 5 || n > NAME_MAX_LEN || memcmp(a->sun_path + 1, "nuse/", 5) != 0) return 0;
  memcpy(out, a->sun_path + 1, n);
  out[n] = '\0';
  return 1;
}

/* What fd is to nuse. Preserves errno. */
static enum kind identify(int fd, struct ident *id) {
  id->kind = NOT_OURS;
  if (!enabled) return NOT_OURS;
  int saved = errno;
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  char peer[NAME_MAX_LEN + 1];
  if (real_getsockname(fd, (struct sockaddr *)&a, &len) == 0 && nuse_name(&a, len, id->name) &&
      (id->name[5] == '4' || id->name[5] == '6') && id->name[6] == '/') {
    id->family = id->name[5] == '4' ? AF_INET : AF_INET6;
    id->kind = OURS_SOCKET;
    /* An accepted stream shares its listener's name; its peer (the daemon's end) names it. */
    len = sizeof a;
    if (real_getpeername(fd, (struct sockaddr *)&a, &len) == 0 && nuse_name(&a, len, peer) &&
        strncmp(peer, "nuse/a/", 7) == 0) {
      strcpy(id->name, peer);
      id->kind = OURS_ACCEPTED;
    }
  }
  errno = saved;
  return id->kind;
}

/* Binds a fresh AF_UNIX socket to a new name of ours. Returns 0 or -1 with errno. */
static int bind_name(int fd, int family, int proto) {
  static unsigned counter;
  for (int attempt = 0; attempt < 64; attempt++) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    /* snprintf may not be async-signal-safe in theory; with integers and no locale it does not allocate. */
    int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "nuse/%c/%d/%ld.%u", family == AF_INET ? '4' : '6',
                       proto, (long)getpid(), n);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    if (real_bind(fd, (struct sockaddr *)&a, alen) == 0) return 0;
    if (errno != EADDRINUSE) return -1; /* a stale name of a reused pid: try the next number */
  }
  return -1;
}

/* ------------------------------------------------------------------ the control connection */

static int ctl_fd = -1;
static int ever_connected; /* a control connection worked once: a failure now means the daemon went away */
static uint32_t ctl_next_id = 1;

struct reply {
  int err;            /* errno from the daemon, 0 for success */
  int family;         /* 4 or 6, 0 when absent */
  uint8_t addr[16];
  size_t addr_len;
  int port;
  int64_t val;
  int has_val;
  char state[16];
  int64_t sndbuf;     /* the SO_SNDBUF to restore after a connect's filler, 0 when absent */
  int eof;            /* status: what a read at EOF reports (an errno), 0 for EOF */
  uint8_t data[OPT_DATA_MAX]; /* an option's value as bytes (TCP_INFO, TCP_CONGESTION) */
  size_t data_len;
  int has_data;
};

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, CTL_TIMEOUT_MS);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    ssize_t got = recv(fd, p, n, 0);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    if (got == 0) {
      errno = ECONNRESET;
      return -1;
    }
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

static int parse_reply(const uint8_t *p, size_t n, uint32_t want_id, struct reply *r) {
  const uint8_t *end = p + n;
  memset(r, 0, sizeof *r);
  int64_t entries = mp_read_map(&p, end);
  if (entries < 0) return -1;
  int64_t id = -1;
  for (int64_t i = 0; i < entries; i++) {
    struct mp_value k, v;
    if (mp_read_value(&p, end, &k) < 0 || k.type != MP_STR || mp_read_value(&p, end, &v) < 0) return -1;
#define KEY(s) (k.n == sizeof(s) - 1 && memcmp(k.p, s, k.n) == 0)
    if (KEY("id") && v.type == MP_INT) id = v.i;
    else if (KEY("err") && v.type == MP_INT) r->err = (int)v.i;
    else if (KEY("fam") && v.type == MP_INT) r->family = (int)v.i;
    else if (KEY("addr") && v.type == MP_BIN && (v.n == 4 || v.n == 16)) {
      memcpy(r->addr, v.p, v.n);
      r->addr_len = v.n;
    } else if (KEY("port") && v.type == MP_INT) r->port = (int)v.i;
    else if (KEY("val") && (v.type == MP_INT || v.type == MP_BOOL)) {
      r->val = v.i;
      r->has_val = 1;
    } else if (KEY("state") && v.type == MP_STR && v.n < sizeof r->state) {
      memcpy(r->state, v.p, v.n);
      r->state[v.n] = '\0';
    } else if (KEY("sndbuf") && v.type == MP_INT) r->sndbuf = v.i;
    else if (KEY("eof") && v.type == MP_INT) r->eof = (int)v.i;
    else if (KEY("data") && v.type == MP_BIN && v.n <= sizeof r->data) {
      memcpy(r->data, v.p, v.n);
      r->data_len = v.n;
      r->has_data = 1;
    }
#undef KEY
  }
  return id == (int64_t)want_id ? 0 : -1;
}

/* One request/reply exchange on an open control connection; -1 with errno on a transport failure. */
static int exchange(const uint8_t *body, size_t len, uint32_t id, struct reply *r) {
  uint8_t head[4];
  put_u32(head, (uint32_t)len);
  if (write_all(ctl_fd, head, 4) < 0 || write_all(ctl_fd, body, len) < 0) return -1;
  uint8_t in[1024];
  if (read_all(ctl_fd, head, 4) < 0) return -1;
  uint32_t n = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) | head[3];
  if (n > sizeof in) {
    errno = EPROTO;
    return -1;
  }
  if (read_all(ctl_fd, in, n) < 0) return -1;
  if (parse_reply(in, n, id, r) < 0) {
    errno = EPROTO;
    return -1;
  }
  return 0;
}

/* Opens this process's control connection (after a fork, the child opens its own). Locked. */
static int ctl_open(void) {
  pid_t pid = getpid();
  if (ctl_fd >= 0 && ctl_pid == pid) return 0;
  if (ctl_fd >= 0) real_close(ctl_fd); /* the parent's, inherited: the parent keeps its copy */
  ctl_fd = -1;
  int fd = real_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (real_connect(fd, (struct sockaddr *)&daemon_addr, daemon_addr_len) < 0) {
    int e = errno;
    real_close(fd);
    errno = e;
    return -1;
  }
  ctl_fd = fd;
  ctl_pid = pid;
  ever_connected = 1;
  /* Sized to the policy (a few hundred bytes at most without one): this may run on a
     signal handler's small stack (a read at EOF). */
  uint8_t buf[128 + policy_len];
  struct mp_writer w = {buf, 0, sizeof buf, 0};
  uint32_t id = ctl_next_id++;
  mp_map(&w, 4 + (policy_kernel[0] != '\0') + (policy_only[0] != '\0') + (upgrade_mptcp != 0));
  mp_cstr(&w, "op");
  mp_cstr(&w, "hello");
  mp_cstr(&w, "id");
  mp_int(&w, id);
  mp_cstr(&w, "v");
  mp_int(&w, PROTOCOL_VERSION);
  mp_cstr(&w, "pid");
  mp_int(&w, pid);
  /* The program's policy: the daemon applies it with its own (docs/shim.md, "Policy"). */
  if (policy_kernel[0] != '\0') {
    mp_cstr(&w, "kernel");
    mp_cstr(&w, policy_kernel);
  }
  if (policy_only[0] != '\0') {
    mp_cstr(&w, "only");
    mp_cstr(&w, policy_only);
  }
  if (upgrade_mptcp) {
    mp_cstr(&w, "mptcp");
    mp_bool(&w, 1);
  }
  struct reply r;
  if (exchange(buf, w.len, id, &r) < 0 || r.err != 0) {
    int e = r.err != 0 ? r.err : errno;
    real_close(ctl_fd);
    ctl_fd = -1;
    errno = e;
    return -1;
  }
  return 0;
}

static int ctl_call_locked(struct mp_writer *w, struct reply *r);

/*
 * Sends the request in w (a map whose first entries the caller wrote; "id" is added here)
 * and waits for the reply. Returns 0 (then r->err is the daemon's answer) or -1 with errno
 * set as the failed call should report it: ECONNREFUSED when no daemon runs, ECONNRESET
 * when it went away.
 */
static int ctl_call(struct mp_writer *w, struct reply *r) {
  if (w->overflow) {
    errno = ENAMETOOLONG;
    return -1;
  }
  pthread_mutex_lock(&ctl_lock);
  return ctl_call_locked(w, r);
}

/*
 * ctl_call for paths a signal handler may reach (read at EOF): never waits on the lock,
 * which the interrupted code may hold. Tries for about 10 ms (another thread's request),
 * then gives up with EWOULDBLOCK; the caller then does without the daemon's answer.
 */
static int ctl_call_try(struct mp_writer *w, struct reply *r) {
  if (w->overflow) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (int i = 0; pthread_mutex_trylock(&ctl_lock) != 0; i++) {
    if (i == 200) {
      errno = EWOULDBLOCK;
      return -1;
    }
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL);
  }
  return ctl_call_locked(w, r);
}

/* The rest of a control call, with ctl_lock held; releases it. */
static int ctl_call_locked(struct mp_writer *w, struct reply *r) {
  int had = ctl_fd >= 0 && ctl_pid == getpid();
  if (ctl_open() < 0) {
    pthread_mutex_unlock(&ctl_lock);
    daemon_lost(had || ever_connected);
    errno = had || ever_connected ? ECONNRESET : ECONNREFUSED; /* it answered once: it went away */
    return -1;
  }
  uint32_t id = ctl_next_id++;
  /* The id goes last: the daemon reads keys in any order. */
  mp_cstr(w, "id");
  mp_int(w, id);
  int rc = w->overflow ? (errno = ENAMETOOLONG, -1) : exchange(w->buf, w->len, id, r);
  if (rc < 0 && errno != ENAMETOOLONG) {
    real_close(ctl_fd);
    ctl_fd = -1;
    daemon_lost(1);
    errno = ECONNRESET;
  }
  pthread_mutex_unlock(&ctl_lock);
  return rc;
}

/* Starts a request map with "op" and "sock"; `extra` more entries follow, then ctl_call adds "id". */
static void begin(struct mp_writer *w, uint8_t *buf, size_t cap, const char *op, const char *sock, uint32_t extra) {
  w->buf = buf;
  w->len = 0;
  w->cap = cap;
  w->overflow = 0;
  mp_map(w, 3 + extra);
  mp_cstr(w, "op");
  mp_cstr(w, op);
  mp_cstr(w, "sock");
  mp_cstr(w, sock);
}

/* A simple request about one socket; returns 0, or -1 with errno (the daemon's or the transport's). */
static int simple_call(struct mp_writer *w, struct reply *r) {
  if (ctl_call(w, r) < 0) return -1;
  if (r->err != 0) {
    errno = r->err;
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ addresses */

/* Reads a program's sockaddr for a socket of `family`: 4 or 16 address bytes (v4-mapped become 4). */
static int read_addr(int family, const struct sockaddr *sa, socklen_t len, uint8_t *addr, size_t *alen, int *port) {
  if (sa == NULL) {
    errno = EFAULT;
    return -1;
  }
  if (len < sizeof(sa_family_t)) {
    errno = EINVAL;
    return -1;
  }
  if (family == AF_INET) {
    if (sa->sa_family != AF_INET) {
      errno = EAFNOSUPPORT;
      return -1;
    }
    if (len < sizeof(struct sockaddr_in)) {
      errno = EINVAL;
      return -1;
    }
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    memcpy(addr, &in->sin_addr, 4);
    *alen = 4;
    *port = ntohs(in->sin_port);
    return 0;
  }
  if (sa->sa_family != AF_INET6) {
    errno = EAFNOSUPPORT;
    return -1;
  }
  if (len < sizeof(struct sockaddr_in6)) {
    errno = EINVAL;
    return -1;
  }
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
  *port = ntohs(in6->sin6_port);
  if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
    memcpy(addr, in6->sin6_addr.s6_addr + 12, 4);
    *alen = 4;
  } else {
    memcpy(addr, in6->sin6_addr.s6_addr, 16);
    *alen = 16;
  }
  return 0;
}

/* Writes an address from the daemon as the program's socket family expects (v4 on a v6 socket is mapped). */
static void write_addr(int family, const struct reply *r, struct sockaddr *sa, socklen_t *lenp) {
  union {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } u;
  memset(&u, 0, sizeof u);
  socklen_t full;
  if (family == AF_INET) {
    u.in.sin_family = AF_INET;
    u.in.sin_port = htons((uint16_t)r->port);
    if (r->addr_len == 4) memcpy(&u.in.sin_addr, r->addr, 4);
    full = sizeof u.in;
  } else {
    u.in6.sin6_family = AF_INET6;
    u.in6.sin6_port = htons((uint16_t)r->port);
    if (r->addr_len == 16) {
      memcpy(u.in6.sin6_addr.s6_addr, r->addr, 16);
    } else if (r->addr_len == 4) {
      u.in6.sin6_addr.s6_addr[10] = 0xff;
      u.in6.sin6_addr.s6_addr[11] = 0xff;
      memcpy(u.in6.sin6_addr.s6_addr + 12, r->addr, 4);
    }
    full = sizeof u.in6;
  }
  if (sa != NULL && lenp != NULL) {
    memcpy(sa, &u, *lenp < full ? *lenp : full);
    *lenp = full; /* as the kernel: the full length, even when truncated */
  }
}

/* ------------------------------------------------------------------ interposed calls */

/*
 * Fds of this process with SO_LINGER {1, N > 0}: their close waits for the daemon to
 * drain the connection (see close). Cleared when the number is reused by socket/accept.
 */
static uint8_t linger_bits[65536 / 8];

static int is_linger_bit(int fd) {
  return fd >= 0 && fd < 65536 && (__atomic_load_n(&linger_bits[fd >> 3], __ATOMIC_RELAXED) >> (fd & 7)) & 1;
}

static void set_linger_bit(int fd, int on) {
  if (fd < 0 || fd >= 65536) return;
  uint8_t bit = (uint8_t)(1u << (fd & 7));
  if (on) __atomic_fetch_or(&linger_bits[fd >> 3], bit, __ATOMIC_RELAXED);
  else __atomic_fetch_and(&linger_bits[fd >> 3], (uint8_t)~bit, __ATOMIC_RELAXED);
}


EXPORT int socket(int domain, int type, int protocol) {
  ENSURE_RESOLVED();
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (!enabled || (domain != AF_INET && domain != AF_INET6) || base != SOCK_STREAM ||
      (protocol != 0 && protocol != IPPROTO_TCP && protocol != IPPROTO_MPTCP)) {
    return real_socket(domain, type, protocol);
  }
  int proto = protocol == IPPROTO_MPTCP || upgrade_mptcp ? IPPROTO_MPTCP : IPPROTO_TCP;
  int fd = real_socket(AF_UNIX, SOCK_STREAM | (type & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0);
  if (fd < 0) return -1;
  if (bind_name(fd, domain, proto) < 0) {
    int e = errno;
    real_close(fd);
    errno = e == EADDRINUSE ? EMFILE : e;
    return -1;
  }
  set_linger_bit(fd, 0);
  return fd;
}

/* The daemon's state of a socket (status request); clears a pending error when `clear`. */
static int status(const char *sock, int clear, struct reply *r) {
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "status", sock, 1);
  mp_cstr(&w, "clear");
  mp_bool(&w, clear);
  return ctl_call(&w, r);
}

/*
 * The status a connect(2) reports its outcome from: as Linux, a connect that returns the
 * failure disconnects the socket (a read then gives ENOTCONN, not the error again).
 */
static int connect_status(const char *sock, struct reply *r) {
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "status", sock, 2);
  mp_cstr(&w, "clear");
  mp_bool(&w, 1);
  mp_cstr(&w, "connect");
  mp_bool(&w, 1);
  return ctl_call(&w, r);
}

/* Gives the stream back its own send buffer once the filler of a connect is no longer needed. */
static void restore_sndbuf(int fd, const struct reply *r) {
  if (r->sndbuf <= 0 || strcmp(r->state, "connecting") == 0) return;
  int cur = 0;
  socklen_t l = sizeof cur;
  if (real_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &l) == 0 && cur <= SMALL_SNDBUF) {
    int v = (int)r->sndbuf;
    real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  }
}

/* Like restore_sndbuf when the send buffer still looks like the filler's: asks the daemon first. */
static void maybe_restore_sndbuf(int fd, const struct ident *id) {
  int cur = 0;
  socklen_t l = sizeof cur;
  if (id->kind != OURS_SOCKET || real_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &l) < 0 || cur > SMALL_SNDBUF) return;
  struct sockaddr_un a;
  socklen_t al = sizeof a;
  if (real_getpeername(fd, (struct sockaddr *)&a, &al) < 0) return; /* not connected: no filler */
  int saved = errno;
  struct reply r;
  if (status(id->name, 0, &r) == 0) restore_sndbuf(fd, &r);
  errno = saved;
}

/* EALREADY, EISCONN or a stored error for a connect on a socket already joined to the daemon. */
static int connect_again(const struct ident *id) {
  struct reply r;
  if (connect_status(id->name, &r) < 0) return -1;
  if (strcmp(r.state, "connecting") == 0) errno = EALREADY;
  else if (strcmp(r.state, "connected") == 0) errno = EISCONN;
  else errno = r.err != 0 ? r.err : ECONNABORTED;
  return -1;
}

/*
 * connect: the stream is joined to the daemon first, then filled with filler bytes
 * under a tiny SO_SNDBUF so that it is not writable (no POLLOUT, no EPOLLOUT). The
 * daemon is told how many filler bytes there are; it reads none until the handshake
 * resolves, then discards them, which makes the stream writable at the moment the TCP
 * connection is established or has failed. getsockopt(SO_ERROR) then asks the daemon
 * for the outcome. A blocking connect is the same, followed by a wait for POLLOUT.
 */
EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len) {
  ENSURE_RESOLVED();
  struct ident id;
  if (identify(fd, &id) == NOT_OURS) return real_connect(fd, sa, len);
  if (id.kind == OURS_ACCEPTED) {
    errno = EISCONN;
    return -1;
  }
  uint8_t addr[16];
  size_t alen;
  int port;
  if (read_addr(id.family, sa, len, addr, &alen, &port) < 0) return -1;

  struct sockaddr_un peer;
  socklen_t plen = sizeof peer;
  if (real_getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) return connect_again(&id);

  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  int nonblock = (flags & O_NONBLOCK) != 0;
  int orig_sndbuf = 0;
  socklen_t l = sizeof orig_sndbuf;
  if (real_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &orig_sndbuf, &l) < 0) return -1;

  /* Join the daemon. A unix connect does not wait for anything but room in the backlog. */
  if (nonblock) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  int rc;
  do rc = real_connect(fd, (struct sockaddr *)&daemon_addr, daemon_addr_len);
  while (rc < 0 && errno == EINTR);
  int e = errno;
  if (nonblock) fcntl(fd, F_SETFL, flags);
  if (rc < 0) {
    daemon_lost(ever_connected);
    errno = e == EACCES ? EACCES : ECONNREFUSED;
    return -1;
  }

  /* Fill the stream; the kernel doubles and clamps the 1 to its minimum (about 4.5 kB). */
  int one = 1;
  real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
  static const uint8_t filler[FILL_CHUNK];
  int64_t filled = 0;
  for (;;) {
    ssize_t w = send(fd, filler, sizeof filler, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      filled += w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    break; /* EAGAIN: full */
  }

  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "connect", id.name, 4);
  mp_cstr(&w, "addr");
  mp_bin(&w, addr, alen);
  mp_cstr(&w, "port");
  mp_int(&w, port);
  mp_cstr(&w, "fill");
  mp_int(&w, filled);
  mp_cstr(&w, "sndbuf");
  mp_int(&w, orig_sndbuf / 2); /* getsockopt reports the doubled value */
  struct reply r;
  if (simple_call(&w, &r) < 0) {
    e = errno;
    real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){orig_sndbuf / 2}, sizeof(int));
    errno = e;
    return -1;
  }
  if (nonblock) {
    errno = EINPROGRESS;
    return -1;
  }
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int pr = poll(&pfd, 1, -1);
    if (pr < 0 && errno == EINTR) {
      errno = EINTR; /* as the kernel: the handshake goes on; a later connect says EALREADY */
      return -1;
    }
    if (pr <= 0) continue;
    if (connect_status(id.name, &r) < 0) return -1;
    /* Writable yet still connecting happens only if no filler fitted: wait a little and ask again. */
    if (strcmp(r.state, "connecting") != 0) break;
    poll(NULL, 0, 10);
  }
  restore_sndbuf(fd, &r);
  if (r.err != 0) {
    errno = r.err;
    return -1;
  }
  return 0;
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len) {
  ENSURE_RESOLVED();
  struct ident id;
  if (identify(fd, &id) == NOT_OURS) return real_bind(fd, sa, len);
  uint8_t addr[16];
  size_t alen;
  int port;
  if (read_addr(id.family, sa, len, addr, &alen, &port) < 0) return -1;
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "bind", id.name, 2);
  mp_cstr(&w, "addr");
  mp_bin(&w, addr, alen);
  mp_cstr(&w, "port");
  mp_int(&w, port);
  struct reply r;
  return simple_call(&w, &r);
}

/* Listener fds this process made, so that close() tells the daemon without probing every fd. */
static uint8_t listener_bits[65536 / 8];

static int is_listener_bit(int fd) {
  return fd >= 0 && fd < 65536 && (__atomic_load_n(&listener_bits[fd >> 3], __ATOMIC_RELAXED) >> (fd & 7)) & 1;
}

static void set_listener_bit(int fd, int on) {
  if (fd < 0 || fd >= 65536) return;
  uint8_t bit = (uint8_t)(1u << (fd & 7));
  if (on) __atomic_fetch_or(&listener_bits[fd >> 3], bit, __ATOMIC_RELAXED);
  else __atomic_fetch_and(&listener_bits[fd >> 3], (uint8_t)~bit, __ATOMIC_RELAXED);
}

EXPORT int listen(int fd, int backlog) {
  ENSURE_RESOLVED();
  struct ident id;
  if (identify(fd, &id) == NOT_OURS) return real_listen(fd, backlog);
  if (id.kind == OURS_ACCEPTED) {
    errno = EINVAL;
    return -1;
  }
  int acc = 0;
  socklen_t l = sizeof acc;
  real_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
  /* The unix listener first: the daemon connects to it as soon as TCP connections arrive. */
  if (real_listen(fd, backlog) < 0) return -1;
  if (acc) return 0; /* listening already: only the backlog changed */
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "listen", id.name, 1);
  mp_cstr(&w, "backlog");
  mp_int(&w, backlog);
  struct reply r;
  if (simple_call(&w, &r) < 0) return -1;
  set_listener_bit(fd, 1);
  return 0;
}

/*
 * accept: the connection is the daemon's, made from a socket named "nuse/a/..."; the
 * daemon gives its TCP peer address. Connections from anyone else are closed unseen.
 */
static int nuse_accept(int fd, struct sockaddr *sa, socklen_t *lenp, int flags, int use4) {
  ENSURE_RESOLVED();
  struct ident id;
  if (identify(fd, &id) != OURS_SOCKET)
    return use4 ? real_accept4(fd, sa, lenp, flags) : real_accept(fd, sa, lenp);
  for (;;) {
    int c = use4 ? real_accept4(fd, NULL, NULL, flags) : real_accept(fd, NULL, NULL);
    if (c < 0) return -1;
    struct ident cid;
    if (identify(c, &cid) != OURS_ACCEPTED) {
      real_close(c);
      continue;
    }
    if (sa != NULL && lenp != NULL) {
      uint8_t buf[256];
      struct mp_writer w;
      begin(&w, buf, sizeof buf, "name", cid.name, 1);
      mp_cstr(&w, "peer");
      mp_bool(&w, 1);
      struct reply r;
      if (simple_call(&w, &r) < 0) {
        int e = errno;
        real_close(c);
        if (e == ECONNRESET || e == ECONNREFUSED) {
          errno = ECONNABORTED;
          return -1;
        }
        continue; /* the connection went away meanwhile */
      }
      write_addr(id.family, &r, sa, lenp);
    }
    set_linger_bit(c, 0);
    return c;
  }
}

EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *lenp) { return nuse_accept(fd, sa, lenp, 0, 0); }

EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *lenp, int flags) {
  return nuse_accept(fd, sa, lenp, flags, 1);
}

static int nuse_name_call(int fd, struct sockaddr *sa, socklen_t *lenp, int peer) {
  ENSURE_RESOLVED();
  struct ident id;
  if (identify(fd, &id) == NOT_OURS)
    return peer ? real_getpeername(fd, sa, lenp) : real_getsockname(fd, sa, lenp);
  if (lenp == NULL) {
    errno = EFAULT;
    return -1;
  }
  maybe_restore_sndbuf(fd, &id);
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "name", id.name, 1);
  mp_cstr(&w, "peer");
  mp_bool(&w, peer);
  struct reply r;
  if (simple_call(&w, &r) < 0) return -1;
  write_addr(id.family, &r, sa, lenp);
  return 0;
}

EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *lenp) { return nuse_name_call(fd, sa, lenp, 0); }

EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *lenp) { return nuse_name_call(fd, sa, lenp, 1); }

/* Options the daemon keeps (TCP state); every other SOL_SOCKET option is the stream's own. */
static int daemon_option(int level, int name) {
  if (level == SOL_SOCKET)
    return name == SO_KEEPALIVE || name == SO_REUSEADDR || name == SO_REUSEPORT || name == SO_RCVBUF ||
           name == SO_SNDBUF || name == SO_LINGER;
  return level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6;
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  ENSURE_RESOLVED();
  struct ident id;
  if (identify(fd, &id) == NOT_OURS || !daemon_option(level, name)) return real_setsockopt(fd, level, name, val, len);
  maybe_restore_sndbuf(fd, &id);
  if (val == NULL) {
    errno = EFAULT;
    return -1;
  }
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "setopt", id.name, 3);
  mp_cstr(&w, "level");
  mp_int(&w, level);
  mp_cstr(&w, "opt");
  mp_int(&w, name);
  mp_cstr(&w, "val");
  if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
    /* A name, not an int: sent as its bytes; the daemon reads up to the first NUL. */
    if (len < 1) {
      errno = EINVAL;
      return -1;
    }
    mp_bin(&w, val, len < OPT_SEND_MAX ? len : OPT_SEND_MAX);
  } else if (level == SOL_SOCKET && name == SO_LINGER && len >= sizeof(struct linger)) {
    const struct linger *lg = val;
    mp_int(&w, lg->l_onoff ? lg->l_linger : -1);
  } else if (len >= sizeof(int)) {
    mp_int(&w, *(const int *)val);
  } else if (len >= 1) {
    mp_int(&w, *(const uint8_t *)val);
  } else {
    errno = EINVAL;
    return -1;
  }
  struct reply r;
  if (simple_call(&w, &r) < 0) return -1;
  if (level == SOL_SOCKET && name == SO_LINGER && len >= sizeof(struct linger)) {
    const struct linger *lg = val;
    set_linger_bit(fd, lg->l_onoff && lg->l_linger > 0);
  }
  return 0;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *lenp) {
  ENSURE_RESOLVED();
  struct ident id;
  int special = level == SOL_SOCKET && (name == SO_ERROR || name == SO_DOMAIN || name == SO_PROTOCOL);
  if (identify(fd, &id) == NOT_OURS || (!special && !daemon_option(level, name)))
    return real_getsockopt(fd, level, name, val, lenp);
  if (val == NULL || lenp == NULL) {
    errno = EFAULT;
    return -1;
  }
  int out;
  struct reply r;
  if (level == SOL_SOCKET && name == SO_ERROR) {
    if (status(id.name, 1, &r) < 0) return -1;
    if (id.kind == OURS_SOCKET) restore_sndbuf(fd, &r);
    out = r.err;
  } else if (level == SOL_SOCKET && name == SO_DOMAIN) {
    out = id.family;
  } else if (level == SOL_SOCKET && name == SO_PROTOCOL && id.kind == OURS_SOCKET && id.name[7] == '2') {
    out = IPPROTO_MPTCP; /* "nuse/4/262/...": asked for, or NUSE_MPTCP */
  } else if (level == SOL_SOCKET && name == SO_PROTOCOL) {
    /* A plain TCP socket (or an accepted one): the daemon's policy may upgrade it to MPTCP. */
    uint8_t buf[256];
    struct mp_writer w;
    begin(&w, buf, sizeof buf, "getopt", id.name, 2);
    mp_cstr(&w, "level");
    mp_int(&w, level);
    mp_cstr(&w, "opt");
    mp_int(&w, name);
    if (simple_call(&w, &r) < 0) return -1;
    out = (int)r.val;
  } else {
    maybe_restore_sndbuf(fd, &id);
    uint8_t buf[256];
    struct mp_writer w;
    begin(&w, buf, sizeof buf, "getopt", id.name, 2);
    mp_cstr(&w, "level");
    mp_int(&w, level);
    mp_cstr(&w, "opt");
    mp_int(&w, name);
    if (simple_call(&w, &r) < 0) return -1;
    if (r.has_data) {
      /* TCP_INFO, TCP_CONGESTION: as many bytes as the caller has room for, as Linux. */
      socklen_t n = *lenp < r.data_len ? *lenp : (socklen_t)r.data_len;
      memcpy(val, r.data, n);
      *lenp = n;
      return 0;
    }
    if (level == SOL_SOCKET && name == SO_LINGER) {
      struct linger lg = {.l_onoff = r.val >= 0, .l_linger = r.val >= 0 ? (int)r.val : 0};
      socklen_t n = *lenp < sizeof lg ? *lenp : sizeof lg;
      memcpy(val, &lg, n);
      *lenp = n;
      return 0;
    }
    out = (int)r.val;
  }
  socklen_t n = *lenp < sizeof out ? *lenp : sizeof out;
  memcpy(val, &out, n);
  *lenp = n;
  return 0;
}

/*
 * close() with SO_LINGER {1, N > 0}, as Linux: the close itself, then a wait of up to N
 * seconds while the daemon drains the connection (what was written reaches TCP, is sent,
 * and our FIN is acknowledged). It returns 0 either way; a signal ends the wait early, as
 * on Linux. Only the last copy of the fd waits (the daemon answers at once otherwise).
 * No lock is waited for (ctl_call_try): a close from a signal handler waits no longer.
 */
static int linger_close(int fd) {
  struct ident id;
  set_linger_bit(fd, 0);
  if (identify(fd, &id) == NOT_OURS) return real_close(fd);
  uint8_t buf[256];
  struct mp_writer w;
  struct reply r;
  int64_t secs = 0;
  begin(&w, buf, sizeof buf, "getopt", id.name, 2);
  mp_cstr(&w, "level");
  mp_int(&w, SOL_SOCKET);
  mp_cstr(&w, "opt");
  mp_int(&w, SO_LINGER);
  if (ctl_call_try(&w, &r) == 0 && r.err == 0 && r.val > 0) secs = r.val;
  int rc = real_close(fd);
  int e = errno;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long pause_us = 1000;
  while (secs > 0) {
    begin(&w, buf, sizeof buf, "linger", id.name, 0);
    if (ctl_call_try(&w, &r) < 0 || r.err != 0 || r.val == 0) break;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t elapsed_us = (int64_t)(now.tv_sec - start.tv_sec) * 1000000 + (now.tv_nsec - start.tv_nsec) / 1000;
    if (elapsed_us >= secs * 1000000) break;
    struct timespec ts = {0, pause_us * 1000};
    if (nanosleep(&ts, NULL) < 0) break; /* a signal: Linux's close stops waiting too */
    if (pause_us < 20000) pause_us *= 2;
  }
  errno = e;
  return rc;
}

/*
 * close: data streams need nothing (the daemon sees EOF once the last copy of the fd is
 * closed, delivers what was written, then sends FIN). A listener's close is told to the
 * daemon, which stops listening once no process holds the name any more. Skipped in a
 * vfork child (it shares our memory) and when the control connection is busy (a close
 * from a signal handler): the daemon then finds out at its next connection attempt. An
 * fd with SO_LINGER {1, N > 0} waits (linger_close), but not in a vfork child.
 */
EXPORT int close(int fd) {
  ENSURE_RESOLVED();
  /* Two bit tests, then the real call: the common close costs nothing more. */
  if (!enabled) return real_close(fd);
  if (is_linger_bit(fd) && may_ask()) return linger_close(fd);
  if (!is_listener_bit(fd) || ctl_pid != getpid()) return real_close(fd);
  struct ident id;
  int ours = identify(fd, &id) == OURS_SOCKET;
  set_listener_bit(fd, 0);
  int rc = real_close(fd);
  int e = errno;
  if (ours && pthread_mutex_trylock(&ctl_lock) == 0) {
    pthread_mutex_unlock(&ctl_lock);
    uint8_t buf[256];
    struct mp_writer w;
    begin(&w, buf, sizeof buf, "closed", id.name, 0);
    struct reply r;
    ctl_call(&w, &r);
  }
  errno = e;
  return rc;
}

/*
 * shutdown: the daemon is told first, then the stream is shut natively. SHUT_WR: the
 * daemon sees EOF and sends FIN after the data (told, so that it knows the EOF for a
 * shutdown and not a close). SHUT_RD: the daemon writes nothing more to the stream (which
 * would refuse it), and the native shutdown makes reads give what is already in the
 * stream, then 0 at once, as on Linux. The daemon treats TCP data that arrives afterwards
 * as Linux does: kept unread after SHUT_RD (a close then sends RST), answered with RST
 * once both directions are shut (the next read fails with ECONNRESET). No lock is waited
 * for (ctl_call_try).
 */
EXPORT int shutdown(int fd, int how) {
  ENSURE_RESOLVED();
  struct ident id;
  if ((how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) || identify(fd, &id) == NOT_OURS)
    return real_shutdown(fd, how);
  struct sockaddr_un a;
  socklen_t al = sizeof a;
  int acc = 0;
  socklen_t l = sizeof acc;
  /* Not connected (ENOTCONN from the native call, as Linux) or a listener: nothing to tell. */
  if (may_ask() && real_getpeername(fd, (struct sockaddr *)&a, &al) == 0 &&
      (real_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0 || !acc)) {
    int saved = errno;
    uint8_t buf[256];
    struct mp_writer w;
    begin(&w, buf, sizeof buf, "shutdown", id.name, 1);
    mp_cstr(&w, "how");
    mp_int(&w, how);
    struct reply r;
    ctl_call_try(&w, &r); /* the daemon gone: the native shutdown still does its part */
    errno = saved;
  }
  return real_shutdown(fd, how);
}

/* ------------------------------------------------------------------ reads at EOF */

/*
 * A TCP reset reaches the program as ECONNRESET on its next read, as on Linux, not as
 * the plain EOF the unix stream shows: the daemon closes the stream at once and keeps
 * the connection's error. A read that returns 0 on one of our sockets asks the daemon
 * whether the connection ended with an error (the status request, which also clears it
 * as reading sk_err does) and returns -1 with that errno if so. Only EOF costs anything:
 * data reads go straight through. If the control connection is busy (the read comes
 * from a signal handler, or another thread waits on the daemon) or the daemon is gone,
 * the read stays EOF.
 */
/*
 * `got` is what the real call returned (0, or -1 with errno ECONNRESET). ECONNRESET too,
 * because the kernel gives it on the stream itself when the daemon closed its end with
 * bytes of ours unread (a connect's filler, when the connect failed): the daemon's answer
 * is the one that counts. Not ours, or no answer: the real call's result.
 */
static ssize_t eof_or_error(int fd, ssize_t got) {
  int saved = errno;
  if (!enabled) return got;
  struct ident id;
  if (!may_ask() || identify(fd, &id) == NOT_OURS) {
    errno = saved;
    return got;
  }
  uint8_t buf[256];
  struct mp_writer w;
  begin(&w, buf, sizeof buf, "status", id.name, 1);
  mp_cstr(&w, "clear");
  mp_bool(&w, 1);
  struct reply r;
  /* The daemon says what this read reports: a connection's error once (ECONNRESET after a
     reset, ECONNREFUSED after a refused non-blocking connect), ENOTCONN after a connect
     that returned its failure, else EOF. */
  if (ctl_call_try(&w, &r) < 0) {
    errno = saved;
    return got;
  }
  if (r.eof != 0) {
    errno = r.eof;
    return -1;
  }
  errno = saved;
  return 0;
}

/* Whether a read's result needs the daemon's word: EOF on a non-empty buffer, or ECONNRESET. */
#define AT_END(r, n) (((r) == 0 && (n) > 0) || ((r) < 0 && errno == ECONNRESET))

static int any_room(const struct iovec *iov, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (iov[i].iov_len > 0) return 1;
  return 0;
}

EXPORT ssize_t read(int fd, void *buf, size_t n) {
  ENSURE_RESOLVED();
  ssize_t r = real_read(fd, buf, n);
  return AT_END(r, n) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
  ENSURE_RESOLVED();
  ssize_t r = real_read_chk(fd, buf, n, buflen);
  return AT_END(r, n) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  ENSURE_RESOLVED();
  ssize_t r = real_readv(fd, iov, iovcnt);
  return AT_END(r, iovcnt > 0 && any_room(iov, (size_t)iovcnt)) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
  ENSURE_RESOLVED();
  ssize_t r = real_recv(fd, buf, n, flags);
  return AT_END(r, n) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags) {
  ENSURE_RESOLVED();
  ssize_t r = real_recv_chk(fd, buf, n, buflen, flags);
  return AT_END(r, n) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa, socklen_t *lenp) {
  ENSURE_RESOLVED();
  ssize_t r = real_recvfrom(fd, buf, n, flags, sa, lenp);
  return AT_END(r, n) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *sa,
                              socklen_t *lenp) {
  ENSURE_RESOLVED();
  ssize_t r = real_recvfrom_chk(fd, buf, n, buflen, flags, sa, lenp);
  return AT_END(r, n) ? eof_or_error(fd, r) : r;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  ENSURE_RESOLVED();
  ssize_t r = real_recvmsg(fd, msg, flags);
  return AT_END(r, msg != NULL && any_room(msg->msg_iov, msg->msg_iovlen)) ? eof_or_error(fd, r) : r;
}
