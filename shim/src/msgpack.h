/*
 * A tiny msgpack subset for the shim's control messages: flat maps whose keys are
 * strings and whose values are nil, booleans, integers, strings or binaries. Encoding
 * writes into a caller's buffer and decoding reads from one: no allocation, so it is
 * safe wherever the shim runs.
 */
#ifndef NUSE_MSGPACK_H
#define NUSE_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

struct mp_writer {
  uint8_t *buf;
  size_t len;
  size_t cap;
  int overflow; /* set when something did not fit; the message must not be sent */
};

void mp_map(struct mp_writer *w, uint32_t entries);
void mp_str(struct mp_writer *w, const char *s, size_t n);
void mp_cstr(struct mp_writer *w, const char *s);
void mp_int(struct mp_writer *w, int64_t v);
void mp_bool(struct mp_writer *w, int v);
void mp_bin(struct mp_writer *w, const void *p, size_t n);

enum mp_type { MP_NIL, MP_BOOL, MP_INT, MP_STR, MP_BIN };

struct mp_value {
  enum mp_type type;
  int64_t i;         /* MP_BOOL, MP_INT */
  const uint8_t *p;  /* MP_STR, MP_BIN: points into the decoded buffer */
  size_t n;
};

/* Reads the header of a map; returns the entry count or -1 for anything else. */
int64_t mp_read_map(const uint8_t **pos, const uint8_t *end);
/* Reads one scalar (nested maps and arrays are refused); returns 0, or -1 on malformed input. */
int mp_read_value(const uint8_t **pos, const uint8_t *end, struct mp_value *v);

#endif
