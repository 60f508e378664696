/*
 * The pair of programs the shim benchmark runs (test/src/bench/shim-bench.ts), the
 * same binary over kernel TCP and through the shim:
 *
 *   pingpong echo PORT                 accept connections; echo every byte back
 *   pingpong sink PORT                 accept connections; read to EOF, answer the count (8 bytes)
 *   pingpong rr HOST PORT N            N 1-byte round trips; prints "median_us p99_us"
 *   pingpong send HOST PORT BYTES      write BYTES, shut down, wait for the count; prints "bytes seconds"
 *
 * Blocking sockets, TCP_NODELAY, one connection at a time: the cost of each call is the
 * thing measured. Built by the benchmark with gcc -O2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int listen_on(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(s, 16) < 0) die("listen");
  printf("listening\n");
  fflush(stdout);
  return s;
}

static int connect_to(const char *host, const char *port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(host, port, &hints, &ai) != 0) die("getaddrinfo");
  int s = socket(ai->ai_family, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (connect(s, ai->ai_addr, ai->ai_addrlen) < 0) die("connect");
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  static char buf[1 << 16];
  if (argc == 3 && (strcmp(argv[1], "echo") == 0 || strcmp(argv[1], "sink") == 0)) {
    int echo = strcmp(argv[1], "echo") == 0;
    int l = listen_on(atoi(argv[2]));
    for (;;) {
      int c = accept(l, NULL, NULL);
      if (c < 0) continue;
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      uint64_t total = 0;
      ssize_t n;
      while ((n = read(c, buf, sizeof buf)) > 0) {
        total += (uint64_t)n;
        if (echo && write(c, buf, (size_t)n) != n) break;
      }
      if (!echo) (void)!write(c, &total, sizeof total);
      close(c);
    }
  }
  if (argc == 5 && strcmp(argv[1], "rr") == 0) {
    int n = atoi(argv[4]);
    double *t = malloc(sizeof(double) * (size_t)n);
    int s = connect_to(argv[2], argv[3]);
    char b = 'x';
    for (int i = 0; i < n; i++) {
      double t0 = now();
      if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) die("round trip");
      t[i] = (now() - t0) * 1e6;
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%.1f %.1f\n", t[n / 2], t[(int)(n * 0.99)]);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    uint64_t want = strtoull(argv[4], NULL, 10), sent = 0, got = 0;
    int s = connect_to(argv[2], argv[3]);
    memset(buf, 'z', sizeof buf);
    double t0 = now();
    while (sent < want) {
      size_t chunk = want - sent < sizeof buf ? (size_t)(want - sent) : sizeof buf;
      ssize_t w = write(s, buf, chunk);
      if (w <= 0) die("write");
      sent += (uint64_t)w;
    }
    shutdown(s, SHUT_WR);
    if (read(s, &got, sizeof got) != sizeof got) die("read count");
    double secs = now() - t0;
    if (got != want) {
      fprintf(stderr, "sent %llu, the sink counted %llu\n", (unsigned long long)want, (unsigned long long)got);
      return 1;
    }
    printf("%llu %.6f\n", (unsigned long long)got, secs);
    return 0;
  }
  fprintf(stderr, "usage: pingpong echo|sink PORT | rr HOST PORT N | send HOST PORT BYTES\n");
  return 2;
}
