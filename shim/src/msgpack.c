#include "msgpack.h"

#include <string.h>

static void put(struct mp_writer *w, const void *p, size_t n) {
  if (w->overflow || n > w->cap - w->len) {
    w->overflow = 1;
    return;
  }
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}

static void put_be(struct mp_writer *w, uint8_t tag, uint64_t v, int bytes) {
  uint8_t b[9];
  b[0] = tag;
  for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
  put(w, b, (size_t)bytes + 1);
}

void mp_map(struct mp_writer *w, uint32_t entries) {
  if (entries < 16) {
    uint8_t b = (uint8_t)(0x80 | entries);
    put(w, &b, 1);
  } else {
    put_be(w, 0xde, entries, 2);
  }
}

void mp_str(struct mp_writer *w, const char *s, size_t n) {
  if (n < 32) {
    uint8_t b = (uint8_t)(0xa0 | n);
    put(w, &b, 1);
  } else if (n < 256) {
    put_be(w, 0xd9, n, 1);
  } else {
    put_be(w, 0xda, n, 2);
  }
  put(w, s, n);
}

void mp_cstr(struct mp_writer *w, const char *s) { mp_str(w, s, strlen(s)); }

void mp_int(struct mp_writer *w, int64_t v) {
  if (v >= 0 && v < 128) {
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
  } else if (v >= 0) {
    if (v <= 0xffffffff) put_be(w, 0xce, (uint64_t)v, 4);
    else put_be(w, 0xcf, (uint64_t)v, 8);
  } else if (v >= -32) {
    uint8_t b = (uint8_t)(int8_t)v;
    put(w, &b, 1);
  } else {
    put_be(w, 0xd3, (uint64_t)v, 8);
  }
}

void mp_bool(struct mp_writer *w, int v) {
  uint8_t b = v ? 0xc3 : 0xc2;
  put(w, &b, 1);
}

void mp_bin(struct mp_writer *w, const void *p, size_t n) {
  if (n < 256) put_be(w, 0xc4, n, 1);
  else put_be(w, 0xc5, n, 2);
  put(w, p, n);
}

static int get_be(const uint8_t **pos, const uint8_t *end, int bytes, uint64_t *out) {
  if (end - *pos < bytes) return -1;
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | (*pos)[i];
  *pos += bytes;
  *out = v;
  return 0;
}

int64_t mp_read_map(const uint8_t **pos, const uint8_t *end) {
  if (*pos >= end) return -1;
  uint8_t t = *(*pos)++;
  uint64_t n;
  if ((t & 0xf0) == 0x80) return t & 0x0f;
  if (t == 0xde) return get_be(pos, end, 2, &n) < 0 ? -1 : (int64_t)n;
  if (t == 0xdf) return get_be(pos, end, 4, &n) < 0 ? -1 : (int64_t)n;
  return -1;
}

static int bytes_of(const uint8_t **pos, const uint8_t *end, size_t n, struct mp_value *v) {
  if ((size_t)(end - *pos) < n) return -1;
  v->p = *pos;
  v->n = n;
  *pos += n;
  return 0;
}

int mp_read_value(const uint8_t **pos, const uint8_t *end, struct mp_value *v) {
  if (*pos >= end) return -1;
  uint8_t t = *(*pos)++;
  uint64_t n;
  memset(v, 0, sizeof *v);
  if (t < 0x80) {
    v->type = MP_INT;
    v->i = t;
    return 0;
  }
  if (t >= 0xe0) {
    v->type = MP_INT;
    v->i = (int8_t)t;
    return 0;
  }
  if ((t & 0xe0) == 0xa0) {
    v->type = MP_STR;
    return bytes_of(pos, end, t & 0x1f, v);
  }
  switch (t) {
    case 0xc0:
      v->type = MP_NIL;
      return 0;
    case 0xc2:
    case 0xc3:
      v->type = MP_BOOL;
      v->i = t == 0xc3;
      return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: {
      int bytes = 1 << (t - 0xcc);
      if (get_be(pos, end, bytes, &n) < 0 || n > INT64_MAX) return -1;
      v->type = MP_INT;
      v->i = (int64_t)n;
      return 0;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      int bytes = 1 << (t - 0xd0);
      if (get_be(pos, end, bytes, &n) < 0) return -1;
      /* sign-extend from the encoded width */
      int shift = 64 - 8 * bytes;
      v->type = MP_INT;
      v->i = shift == 0 ? (int64_t)n : (int64_t)(n << shift) >> shift;
      return 0;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      int is_str = t >= 0xd9;
      int bytes = 1 << (t - (is_str ? 0xd9 : 0xc4));
      if (get_be(pos, end, bytes, &n) < 0) return -1;
      v->type = is_str ? MP_STR : MP_BIN;
      return bytes_of(pos, end, (size_t)n, v);
    }
    default:
      return -1; /* floats, arrays, nested maps, extensions: not part of the protocol */
  }
}
