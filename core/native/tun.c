/*
 * tun.node: a Linux TUN device for Node, through Node-API (no NAN, no thread pool).
 *
 *   const { TunDevice } = require('./build/Release/tun.node');
 *   const dev = new TunDevice('nuse0');   // '' lets the kernel choose (tun0, tun1, ...)
 *   dev.name, dev.fd
 *   dev.start((err, data, ends) => { ... });  // one call per wake-up: packet i is
 *                                             // data[ends[i-1] .. ends[i]) (ends[-1] = 0)
 *   dev.write(packet)  -> 0 written, 1 queued (device said EAGAIN), -1 dropped (queue
 *                         full), -2 dropped (write error; see stats().lastWriteError)
 *   dev.stats(), dev.ref(), dev.unref(), dev.close()
 *
 * The device is opened with IFF_TUN | IFF_NO_PI and O_NONBLOCK. Reading happens on the
 * event loop: a uv_poll handle watches the fd; on readable the packets are read until
 * EAGAIN (or until the slab is full; uv_poll is level-triggered, so the rest comes on the
 * next wake-up) into one preallocated slab, copied out as a single Buffer and handed to
 * JS in one callback. Writes go straight to write(2); when the device's queue is full
 * (EAGAIN) the packet is copied into a bounded FIFO and UV_WRITABLE polling flushes it.
 *
 * Errors thrown to JS are Errors with `code` (the errno name), `errno` and `syscall`.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

/* Slab for one wake-up's reads. A read needs room for the largest packet (64 KiB). */
#define SLAB_SIZE (1024 * 1024)
#define MAX_PACKET 65536
#define MAX_BATCH 1024
/* With receive offload a read may be a TCP super-packet: read into scratch, cut into the slab. */
#define SCRATCH_SIZE (65536 + 1024)
/* Room kept in the slab for one cut super-packet: its bytes plus a header per segment. */
#define CUT_ROOM (MAX_PACKET + 32768)
#define MAX_CUT_SEGMENTS 256
/* Bounded write queue (packets waiting for the device to accept them). */
#define MAX_QUEUED 1024

typedef struct queued_packet {
  struct queued_packet *next;
  struct virtio_net_hdr vnet; /* used when the device was opened with vnetHdr */
  size_t len;
  uint8_t data[];
} queued_packet;

typedef struct {
  napi_env env;
  int fd;
  char name[IFNAMSIZ];
  int closed;
  int started;
  int vnet_hdr;      /* IFF_VNET_HDR: every read and write carries a struct virtio_net_hdr first */
  int rx_offload;    /* the kernel may hand us TCP super-packets and partial checksums (TUNSETOFFLOAD) */
  uint8_t *scratch;  /* SCRATCH_SIZE, with rx_offload */
  int poll_events;   /* current uv_poll event mask */
  uv_poll_t *poll;   /* heap: freed in the uv_close callback, which may outlive us */
  napi_ref self_ref; /* strong while started, so the object outlives its poll handle */
  napi_ref callback;
  napi_async_context async_context;
  uint8_t *slab;
  uint32_t ends[MAX_BATCH];
  queued_packet *queue_head, *queue_tail;
  uint32_t queue_len;
  /* statistics */
  double rx_packets, rx_bytes, rx_batches, tx_packets, tx_bytes, tx_queued, tx_dropped_queue, tx_errors;
  int last_write_errno;
  double rx_super_packets, rx_cut_segments, rx_errors;
} tun_t;

/* ---------- errors ---------- */

static const char *errno_code(int err) {
  switch (err) {
  case ENOENT: return "ENOENT";
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case EBUSY: return "EBUSY";
  case EINVAL: return "EINVAL";
  case ENODEV: return "ENODEV";
  case ENXIO: return "ENXIO";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case ENOMEM: return "ENOMEM";
  case ENOBUFS: return "ENOBUFS";
  case EIO: return "EIO";
  case EBADF: return "EBADF";
  case EBADFD: return "EBADFD";
  case EFAULT: return "EFAULT";
  case EAGAIN: return "EAGAIN";
  case EEXIST: return "EEXIST";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  default: return "EUNKNOWN";
  }
}

static napi_value make_errno_error(napi_env env, int err, const char *syscall, const char *message) {
  napi_value code, msg, error, errno_value, syscall_value;
  const char *code_str = errno_code(err);
  napi_create_string_utf8(env, code_str, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

static void throw_errno(napi_env env, int err, const char *syscall, const char *message) {
  napi_throw(env, make_errno_error(env, err, syscall, message));
}

#define NAPI_CALL(env, call)                                                                   \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      const napi_extended_error_info *info_;                                                   \
      bool pending_;                                                                           \
      napi_get_last_error_info((env), &info_);                                                 \
      napi_is_exception_pending((env), &pending_);                                             \
      if (!pending_)                                                                           \
        napi_throw_error((env), NULL,                                                          \
                         info_->error_message ? info_->error_message : "tun: Node-API call failed"); \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

/* ---------- device ---------- */

static void free_queue(tun_t *t) {
  queued_packet *p = t->queue_head;
  while (p) {
    queued_packet *next = p->next;
    free(p);
    p = next;
  }
  t->queue_head = t->queue_tail = NULL;
  t->queue_len = 0;
}

static void on_poll_closed(uv_handle_t *handle) { free(handle); }

static void tun_close(tun_t *t) {
  if (t->closed) return;
  t->closed = 1;
  if (t->poll) {
    /* Stop polling before closing the fd (libuv requires it). */
    uv_poll_stop(t->poll);
    t->poll->data = NULL;
    uv_close((uv_handle_t *)t->poll, on_poll_closed);
    t->poll = NULL;
  }
  if (t->fd >= 0) {
    close(t->fd); /* a non-persistent tun disappears with its last fd */
    t->fd = -1;
  }
  free_queue(t);
  free(t->slab);
  t->slab = NULL;
  free(t->scratch);
  t->scratch = NULL;
  if (t->callback) {
    napi_delete_reference(t->env, t->callback);
    t->callback = NULL;
  }
  if (t->async_context) {
    napi_async_destroy(t->env, t->async_context);
    t->async_context = NULL;
  }
  if (t->self_ref && t->started) {
    uint32_t count;
    napi_reference_unref(t->env, t->self_ref, &count);
  }
  t->started = 0;
}

static void tun_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  tun_t *t = data;
  t->env = env;
  tun_close(t);
  if (t->self_ref) napi_delete_reference(env, t->self_ref);
  free(t);
}

static tun_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "tun: not a TunDevice");
    return NULL;
  }
  return data;
}

static void set_poll_events(tun_t *t, int events) {
  if (t->closed || !t->poll || events == t->poll_events) return;
  t->poll_events = events;
  uv_poll_start(t->poll, events, NULL); /* callback unchanged: see start() */
}

/* One packet to the device, behind its virtio-net header when the device has them. */
static ssize_t write_packet(tun_t *t, const struct virtio_net_hdr *vnet, const uint8_t *data, size_t len) {
  if (!t->vnet_hdr) return write(t->fd, data, len);
  struct iovec iov[2] = {{(void *)vnet, sizeof *vnet}, {(void *)data, len}};
  ssize_t n = writev(t->fd, iov, 2);
  return n < 0 ? n : n - (ssize_t)sizeof *vnet;
}

/*
 * The virtio-net header for a packet: none of its fields for a plain packet; for a TCP
 * super-segment of several MSS-sized segments (gso_size > 0), what the kernel needs to
 * cut it (GSO), filling in each segment's TCP checksum from the pseudo-header sum the
 * packet carries (NEEDS_CSUM with csum_start/csum_offset). Returns 0, or -1 when the
 * packet is not one this can describe (then it is an error to ask for GSO).
 */
static int vnet_header_for(const uint8_t *data, size_t len, uint32_t gso_size, struct virtio_net_hdr *h) {
  memset(h, 0, sizeof *h);
  if (gso_size == 0) return 0;
  if (len < 1) return -1;
  size_t ip_len;
  int version = data[0] >> 4;
  if (version == 4) {
    ip_len = (size_t)(data[0] & 0x0f) * 4;
    if (len < ip_len + 20 || data[9] != 6) return -1;
    h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  } else if (version == 6) {
    ip_len = 40;
    if (len < ip_len + 20 || data[6] != 6) return -1;
    h->gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
  } else {
    return -1;
  }
  size_t tcp_len = (size_t)(data[ip_len + 12] >> 4) * 4;
  if (tcp_len < 20 || len < ip_len + tcp_len + gso_size) return -1;
  h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h->hdr_len = (uint16_t)(ip_len + tcp_len);
  h->gso_size = (uint16_t)gso_size;
  h->csum_start = (uint16_t)ip_len;
  h->csum_offset = 16; /* the TCP checksum field */
  return 0;
}

/* Writes queued packets until the queue is empty or the device says EAGAIN again. */
static void flush_queue(tun_t *t) {
  while (t->queue_head) {
    queued_packet *p = t->queue_head;
    ssize_t n = write_packet(t, &p->vnet, p->data, p->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      t->tx_errors++;
      t->last_write_errno = errno;
    } else {
      t->tx_packets++;
      t->tx_bytes += (double)p->len;
    }
    t->queue_head = p->next;
    if (!t->queue_head) t->queue_tail = NULL;
    t->queue_len--;
    free(p);
  }
}

static void call_js(tun_t *t, napi_value *argv, size_t argc) {
  napi_env env = t->env;
  napi_value cb, self, result;
  if (napi_get_reference_value(env, t->callback, &cb) != napi_ok) return;
  if (napi_get_reference_value(env, t->self_ref, &self) != napi_ok) return;
  if (napi_make_callback(env, t->async_context, self, cb, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exception;
      napi_get_and_clear_last_exception(env, &exception);
      napi_fatal_exception(env, exception); /* -> process 'uncaughtException' */
    }
  }
}

static void report_error(tun_t *t, int err, const char *syscall) {
  char message[160];
  snprintf(message, sizeof message, "tun %s: %s failed: %s", t->name, syscall, strerror(err));
  napi_value argv[1] = {make_errno_error(t->env, err, syscall, message)};
  call_js(t, argv, 1);
}

/* ---------- receive offload: completing checksums, cutting super-packets ---------- */

static uint64_t sum16(const uint8_t *p, size_t len, uint64_t sum) {
  for (; len > 1; p += 2, len -= 2) sum += (uint32_t)(p[0] << 8 | p[1]);
  if (len) sum += (uint32_t)p[0] << 8;
  return sum;
}

static uint16_t fold16(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* The TCP checksum of a whole segment (header with a zero checksum field, and payload). */
static void tcp_checksum(uint8_t *s, size_t len, size_t ip_len, int v6) {
  size_t tcp_len = len - ip_len;
  s[ip_len + 16] = s[ip_len + 17] = 0;
  uint64_t sum = v6 ? sum16(s + 8, 32, 0) : sum16(s + 12, 8, 0);
  sum += 6 + tcp_len; /* protocol and upper-layer length (RFC 9293 §3.1, RFC 8200 §8.1) */
  sum = sum16(s + ip_len, tcp_len, sum);
  put16(s + ip_len + 16, (uint16_t)~fold16(sum));
}

/*
 * Appends one packet read with receive offload to the slab as the stack expects packets:
 * a NEEDS_CSUM packet gets its checksum completed (the field holds the pseudo-header
 * sum: RFC 1071 sums over the rest finish it); a TCP super-packet (GSO) is cut into
 * gso_size segments as the kernel's own tcp_gso_segment would: each with the header,
 * its sequence number and length, the IPv4 Identification counting up, FIN and PSH only
 * on the last, CWR only on the first, and full checksums. Returns the bytes appended,
 * or 0 when it dropped the packet (counted as an error).
 */
static size_t append_offloaded(tun_t *t, const struct virtio_net_hdr *h, const uint8_t *p, size_t len, size_t used,
                               uint32_t *count) {
  uint8_t *out = t->slab + used;
  int version = len > 0 ? p[0] >> 4 : 0;
  int v6 = version == 6;
  size_t ip_len = v6 ? 40 : (version == 4 ? (size_t)(p[0] & 0x0f) * 4 : 0);
  uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
  if (gso == VIRTIO_NET_HDR_GSO_NONE) {
    memcpy(out, p, len);
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (size_t)h->csum_start + h->csum_offset + 2 <= len) {
      uint16_t c = (uint16_t)~fold16(sum16(out + h->csum_start, len - h->csum_start, 0));
      put16(out + h->csum_start + h->csum_offset, c);
    }
    t->ends[(*count)++] = (uint32_t)(used + len);
    return len;
  }
  if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) || ip_len < 20 || len < ip_len + 20 ||
      p[v6 ? 6 : 9] != 6 || h->gso_size == 0) {
    t->rx_errors++;
    return 0;
  }
  size_t tcp_len = (size_t)(p[ip_len + 12] >> 4) * 4;
  size_t hl = ip_len + tcp_len;
  if (tcp_len < 20 || len <= hl) {
    t->rx_errors++;
    return 0;
  }
  size_t payload = len - hl, mss = h->gso_size;
  uint32_t seq = (uint32_t)p[ip_len + 4] << 24 | (uint32_t)p[ip_len + 5] << 16 | (uint32_t)p[ip_len + 6] << 8 |
                 p[ip_len + 7];
  uint32_t id = (uint32_t)(p[4] << 8 | p[5]);
  uint8_t flags = p[ip_len + 13];
  size_t w = 0, i = 0;
  for (size_t off = 0; off < payload; off += mss, i++) {
    size_t chunk = payload - off < mss ? payload - off : mss;
    uint8_t *seg = out + w;
    size_t slen = hl + chunk;
    memcpy(seg, p, hl);
    memcpy(seg + hl, p + hl + off, chunk);
    if (v6) {
      put16(seg + 4, (uint32_t)(slen - 40));
    } else {
      put16(seg + 2, (uint32_t)slen);
      put16(seg + 4, (id + (uint32_t)i) & 0xffff);
      seg[10] = seg[11] = 0;
      put16(seg + 10, (uint16_t)~fold16(sum16(seg, ip_len, 0)));
    }
    uint32_t s = seq + (uint32_t)off;
    seg[ip_len + 4] = (uint8_t)(s >> 24);
    seg[ip_len + 5] = (uint8_t)(s >> 16);
    seg[ip_len + 6] = (uint8_t)(s >> 8);
    seg[ip_len + 7] = (uint8_t)s;
    uint8_t f = flags;
    if (off + chunk < payload) f &= (uint8_t)~0x09; /* FIN, PSH: the last segment's */
    if (i > 0) f &= (uint8_t)~0x80;                 /* CWR: the first segment's */
    seg[ip_len + 13] = f;
    tcp_checksum(seg, slen, ip_len, v6);
    w += slen;
    t->ends[(*count)++] = (uint32_t)(used + w);
  }
  t->rx_super_packets++;
  t->rx_cut_segments += (double)i;
  return w;
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  tun_t *t = handle->data;
  if (!t || t->closed) return;
  napi_handle_scope scope;
  napi_open_handle_scope(t->env, &scope);

  if (status < 0) {
    set_poll_events(t, 0);
    report_error(t, -status, "poll");
    napi_close_handle_scope(t->env, scope);
    return;
  }

  if (events & UV_WRITABLE) {
    flush_queue(t);
    if (!t->queue_head) set_poll_events(t, UV_READABLE);
  }

  if (events & UV_READABLE) {
    size_t used = 0;
    uint32_t count = 0;
    int read_errno = 0;
    while (count + MAX_CUT_SEGMENTS < MAX_BATCH && SLAB_SIZE - used >= CUT_ROOM) {
      ssize_t n;
      if (t->rx_offload) {
        struct virtio_net_hdr vnet;
        struct iovec iov[2] = {{&vnet, sizeof vnet}, {t->scratch, SCRATCH_SIZE}};
        n = readv(t->fd, iov, 2);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) read_errno = errno;
          break;
        }
        if (n <= (ssize_t)sizeof vnet) break;
        used += append_offloaded(t, &vnet, t->scratch, (size_t)n - sizeof vnet, used, &count);
        continue;
      }
      if (t->vnet_hdr) {
        /* No offloads were enabled (TUNSETOFFLOAD 0): the header says nothing we need. */
        struct virtio_net_hdr vnet;
        struct iovec iov[2] = {{&vnet, sizeof vnet}, {t->slab + used, MAX_PACKET}};
        n = readv(t->fd, iov, 2);
        if (n > 0) n = n >= (ssize_t)sizeof vnet ? n - (ssize_t)sizeof vnet : 0;
      } else {
        n = read(t->fd, t->slab + used, MAX_PACKET);
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) read_errno = errno;
        break;
      }
      if (n == 0) break;
      used += (size_t)n;
      t->ends[count++] = (uint32_t)used;
    }
    if (count > 0) {
      napi_value argv[3], buffer, ends_ab;
      void *data;
      t->rx_packets += count;
      t->rx_bytes += (double)used;
      t->rx_batches++;
      napi_get_null(t->env, &argv[0]);
      napi_create_buffer_copy(t->env, used, t->slab, NULL, &buffer);
      napi_create_arraybuffer(t->env, count * sizeof(uint32_t), &data, &ends_ab);
      memcpy(data, t->ends, count * sizeof(uint32_t));
      argv[1] = buffer;
      napi_create_typedarray(t->env, napi_uint32_array, count, ends_ab, 0, &argv[2]);
      call_js(t, argv, 3);
    }
    if (read_errno && !t->closed) {
      /* EBADFD/EIO: the interface was deleted under us. Stop reading, tell JS. */
      set_poll_events(t, t->queue_head ? UV_WRITABLE : 0);
      report_error(t, read_errno, "read");
    }
  }
  napi_close_handle_scope(t->env, scope);
}

/*
 * new TunDevice(name: string, options?: { vnetHdr?: boolean }) -- '' for a kernel-chosen name.
 * vnetHdr opens the device with IFF_VNET_HDR, so that writes may be TCP super-segments
 * the kernel cuts (GSO); reads stay plain MTU-sized packets (no offloads toward us).
 */
static napi_value tun_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  char name[IFNAMSIZ + 1] = {0};
  size_t name_len = 0;
  if (argc >= 1) {
    napi_valuetype type;
    NAPI_CALL(env, napi_typeof(env, argv[0], &type));
    if (type == napi_string) {
      char buf[64];
      NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &name_len));
      if (name_len >= IFNAMSIZ) {
        throw_errno(env, EINVAL, "open", "tun: interface name is longer than 15 bytes (IFNAMSIZ - 1)");
        return NULL;
      }
      memcpy(name, buf, name_len);
    } else if (type != napi_undefined && type != napi_null) {
      napi_throw_type_error(env, NULL, "tun: the name must be a string");
      return NULL;
    }
  }

  bool vnet_hdr = false, rx_offload = false;
  if (argc >= 2) {
    napi_valuetype type;
    NAPI_CALL(env, napi_typeof(env, argv[1], &type));
    if (type == napi_object) {
      bool has = false;
      NAPI_CALL(env, napi_has_named_property(env, argv[1], "vnetHdr", &has));
      if (has) {
        napi_value v;
        NAPI_CALL(env, napi_get_named_property(env, argv[1], "vnetHdr", &v));
        NAPI_CALL(env, napi_typeof(env, v, &type));
        if (type != napi_boolean) {
          napi_throw_type_error(env, NULL, "tun: options.vnetHdr must be a boolean");
          return NULL;
        }
        NAPI_CALL(env, napi_get_value_bool(env, v, &vnet_hdr));
      }
      NAPI_CALL(env, napi_has_named_property(env, argv[1], "rxOffload", &has));
      if (has) {
        napi_value v;
        NAPI_CALL(env, napi_get_named_property(env, argv[1], "rxOffload", &v));
        NAPI_CALL(env, napi_typeof(env, v, &type));
        if (type != napi_boolean) {
          napi_throw_type_error(env, NULL, "tun: options.rxOffload must be a boolean");
          return NULL;
        }
        NAPI_CALL(env, napi_get_value_bool(env, v, &rx_offload));
        if (rx_offload) vnet_hdr = true;
      }
    } else if (type != napi_undefined && type != napi_null) {
      napi_throw_type_error(env, NULL, "tun: options must be an object");
      return NULL;
    }
  }
  char message[256];
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO)
      snprintf(message, sizeof message,
               "cannot open /dev/net/tun: %s: the tun driver is missing (modprobe tun; in a container, "
               "pass --device /dev/net/tun)", strerror(err));
    else if (err == EPERM || err == EACCES)
      snprintf(message, sizeof message,
               "cannot open /dev/net/tun: %s: creating a tun interface needs root or CAP_NET_ADMIN", strerror(err));
    else
      snprintf(message, sizeof message, "cannot open /dev/net/tun: %s", strerror(err));
    throw_errno(env, err, "open", message);
    return NULL;
  }

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  /*
   * With IFF_VNET_HDR each read and write carries a struct virtio_net_hdr first: writes
   * may then be TCP super-segments up to 64 KiB that the kernel cuts (GSO), one system
   * call for dozens of segments. Receiving super-packets too (TUNSETOFFLOAD with
   * TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) is left for later: the slab already has room
   * for 64 KiB reads.
   */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, name_len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    const char *shown = name_len ? name : "(kernel-chosen)";
    if (err == EPERM || err == EACCES)
      snprintf(message, sizeof message,
               "cannot create tun interface %s: %s: this needs root or CAP_NET_ADMIN", shown, strerror(err));
    else if (err == EBUSY)
      snprintf(message, sizeof message,
               "cannot create tun interface %s: %s: the name is taken (another process has it open)", shown,
               strerror(err));
    else if (err == EINVAL)
      snprintf(message, sizeof message,
               "cannot create tun interface %s: %s: bad name, or a non-tun interface already has it", shown,
               strerror(err));
    else
      snprintf(message, sizeof message, "cannot create tun interface %s: %s", shown, strerror(err));
    close(fd);
    throw_errno(env, err, "ioctl(TUNSETIFF)", message);
    return NULL;
  }

  if (vnet_hdr) {
    int size = (int)sizeof(struct virtio_net_hdr);
    /* With rx_offload the kernel may hand us TCP super-packets and partial checksums, which
     * the read path completes and cuts (append_offloaded); without, whole plain packets. */
    unsigned long offloads = rx_offload ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) : 0;
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 || ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
      int err = errno;
      close(fd);
      throw_errno(env, err, "ioctl(TUNSETVNETHDRSZ)", "tun: cannot set up virtio-net headers");
      return NULL;
    }
  }
  tun_t *t = calloc(1, sizeof *t);
  if (!t) {
    close(fd);
    throw_errno(env, ENOMEM, "calloc", "tun: out of memory");
    return NULL;
  }
  t->env = env;
  t->fd = fd;
  t->vnet_hdr = vnet_hdr;
  t->rx_offload = rx_offload;
  memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
  t->name[IFNAMSIZ - 1] = 0;
  if (napi_wrap(env, self, t, tun_finalize, NULL, &t->self_ref) != napi_ok) {
    close(fd);
    free(t);
    napi_throw_error(env, NULL, "tun: napi_wrap failed");
    return NULL;
  }
  napi_value v;
  NAPI_CALL(env, napi_create_string_utf8(env, t->name, NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_named_property(env, self, "name", v));
  NAPI_CALL(env, napi_create_int32(env, fd, &v));
  NAPI_CALL(env, napi_set_named_property(env, self, "fd", v));
  return self;
}

/* start(callback(err, data, ends)) */
static napi_value tun_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_t *t = unwrap(env, info, &argc, argv);
  if (!t) return NULL;
  if (t->closed) {
    throw_errno(env, EBADF, "start", "tun: the device is closed");
    return NULL;
  }
  if (t->started) {
    napi_throw_error(env, NULL, "tun: already started");
    return NULL;
  }
  napi_valuetype type = napi_undefined;
  if (argc >= 1) NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "tun: start needs a callback");
    return NULL;
  }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  t->slab = malloc(SLAB_SIZE);
  t->poll = malloc(sizeof *t->poll);
  if (t->rx_offload) t->scratch = malloc(SCRATCH_SIZE);
  if (!t->slab || !t->poll || (t->rx_offload && !t->scratch)) {
    free(t->slab);
    free(t->poll);
    free(t->scratch);
    t->slab = NULL;
    t->poll = NULL;
    t->scratch = NULL;
    throw_errno(env, ENOMEM, "malloc", "tun: out of memory");
    return NULL;
  }
  int rc = uv_poll_init(loop, t->poll, t->fd);
  if (rc < 0) {
    free(t->poll);
    t->poll = NULL;
    throw_errno(env, -rc, "uv_poll_init", "tun: cannot poll the device");
    return NULL;
  }
  t->poll->data = t;
  napi_value resource_name;
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &t->callback));
  NAPI_CALL(env, napi_create_string_utf8(env, "TunDevice", NAPI_AUTO_LENGTH, &resource_name));
  NAPI_CALL(env, napi_async_init(env, NULL, resource_name, &t->async_context));
  uint32_t count;
  NAPI_CALL(env, napi_reference_ref(env, t->self_ref, &count));
  t->started = 1;
  t->poll_events = UV_READABLE | (t->queue_head ? UV_WRITABLE : 0);
  uv_poll_start(t->poll, t->poll_events, on_poll);
  return NULL;
}

/*
 * write(packet: Uint8Array, gsoSize?: number) -> 0 written, 1 queued, -1 dropped (queue
 * full), -2 dropped (error). With gsoSize (a device opened with vnetHdr), the packet is a
 * TCP super-segment the kernel cuts into segments of gsoSize payload bytes.
 */
static napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  tun_t *t = unwrap(env, info, &argc, argv);
  if (!t) return NULL;
  if (t->closed) {
    throw_errno(env, EBADF, "write", "tun: the device is closed");
    return NULL;
  }
  bool is_typed = false;
  if (argc >= 1) NAPI_CALL(env, napi_is_typedarray(env, argv[0], &is_typed));
  if (!is_typed) {
    napi_throw_type_error(env, NULL, "tun: write needs a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "tun: write needs a Uint8Array");
    return NULL;
  }
  uint32_t gso_size = 0;
  if (argc >= 2) {
    napi_valuetype vt;
    NAPI_CALL(env, napi_typeof(env, argv[1], &vt));
    if (vt == napi_number) NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &gso_size));
  }
  struct virtio_net_hdr vnet;
  if ((gso_size > 0 && !t->vnet_hdr) || gso_size > 65535 || vnet_header_for(data, length, gso_size, &vnet) < 0) {
    napi_throw_range_error(env, NULL, "tun: gsoSize needs a device opened with vnetHdr and a TCP packet longer than one segment");
    return NULL;
  }
  int code = 0;
  if (t->queue_head) {
    /* Keep order: behind what is already waiting. */
    code = 1;
  } else {
    ssize_t n;
    do n = write_packet(t, &vnet, data, length);
    while (n < 0 && errno == EINTR);
    if (n >= 0) {
      t->tx_packets++;
      t->tx_bytes += (double)length;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      code = 1;
    } else {
      t->tx_errors++;
      t->last_write_errno = errno;
      code = -2;
    }
  }
  if (code == 1) {
    queued_packet *p = NULL;
    if (t->queue_len < MAX_QUEUED) p = malloc(sizeof *p + length);
    if (!p) {
      t->tx_dropped_queue++;
      code = -1;
    } else {
      p->next = NULL;
      p->vnet = vnet;
      p->len = length;
      memcpy(p->data, data, length);
      if (t->queue_tail) t->queue_tail->next = p;
      else t->queue_head = p;
      t->queue_tail = p;
      t->queue_len++;
      t->tx_queued++;
      if (t->started) set_poll_events(t, t->poll_events | UV_WRITABLE);
    }
  }
  NAPI_CALL(env, napi_create_int32(env, code, &result));
  return result;
}

static void set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static napi_value tun_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t *t = unwrap(env, info, &argc, NULL);
  if (!t) return NULL;
  napi_value obj;
  NAPI_CALL(env, napi_create_object(env, &obj));
  set_number(env, obj, "rxPackets", t->rx_packets);
  set_number(env, obj, "rxBytes", t->rx_bytes);
  set_number(env, obj, "rxBatches", t->rx_batches);
  set_number(env, obj, "rxSuperPackets", t->rx_super_packets);
  set_number(env, obj, "rxCutSegments", t->rx_cut_segments);
  set_number(env, obj, "rxErrors", t->rx_errors);
  set_number(env, obj, "txPackets", t->tx_packets);
  set_number(env, obj, "txBytes", t->tx_bytes);
  set_number(env, obj, "txQueued", t->tx_queued);
  set_number(env, obj, "txDroppedQueueFull", t->tx_dropped_queue);
  set_number(env, obj, "txErrors", t->tx_errors);
  set_number(env, obj, "queueLength", t->queue_len);
  napi_value err;
  if (t->last_write_errno) {
    NAPI_CALL(env, napi_create_string_utf8(env, errno_code(t->last_write_errno), NAPI_AUTO_LENGTH, &err));
  } else {
    NAPI_CALL(env, napi_get_null(env, &err));
  }
  NAPI_CALL(env, napi_set_named_property(env, obj, "lastWriteError", err));
  return obj;
}

static napi_value tun_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t *t = unwrap(env, info, &argc, NULL);
  if (t && t->poll) uv_ref((uv_handle_t *)t->poll);
  return NULL;
}

static napi_value tun_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t *t = unwrap(env, info, &argc, NULL);
  if (t && t->poll) uv_unref((uv_handle_t *)t->poll);
  return NULL;
}

static napi_value tun_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t *t = unwrap(env, info, &argc, NULL);
  if (t) tun_close(t);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"start", NULL, tun_start, NULL, NULL, NULL, napi_default_method, NULL},
      {"write", NULL, tun_write, NULL, NULL, NULL, napi_default_method, NULL},
      {"stats", NULL, tun_stats, NULL, NULL, NULL, napi_default_method, NULL},
      {"ref", NULL, tun_ref, NULL, NULL, NULL, napi_default_method, NULL},
      {"unref", NULL, tun_unref, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, tun_close_js, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "TunDevice", NAPI_AUTO_LENGTH, tun_new, NULL,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "TunDevice", cls));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
