/* TCP streams shared by the bindings that read and write them (l_tcp.c
 * owns them; l_http.c parses HTTP straight out of their read buffers).
 *
 * A stream is a malloc'd record holding the uv_tcp_t; the Lua object is a
 * userdata box holding a pointer to it. close() (or the box's __gc, or the
 * engine closing) wakes every task waiting on the stream with FDN_ECLOSED,
 * clears the box's pointer and hands the handle to uv_close; the record is
 * freed in the close callback once no request of its own is in flight.
 */
#ifndef FDN_LFDN_TCP_H
#define FDN_LFDN_TCP_H

#include <stddef.h>

#include "lfdn.h"

#define LFDN_TCP_MT "fdn.tcp"

enum { LFDN_TCP_CONN = 1, LFDN_TCP_SERVER = 2 };

typedef struct lfdn_tcp_s lfdn_tcp_t;

struct lfdn_tcp_s {
  uv_tcp_t handle; /* first, so callbacks can cast back */
  lfdn_resource_t res;
  lfdn_tcp_t **box; /* the Lua object's pointer to us, while it lives */
  fdn_engine_t *engine;
  int refs; /* the handle, plus a name lookup in flight */
  int err;  /* sticky libuv error (negative), 0 for none */
  uint8_t kind;
  uint8_t closed;     /* closed: every operation fails with Closed */
  uint8_t reading;    /* uv_read_start is in effect */
  uint8_t eof;        /* the peer shut its side down */
  uint8_t connecting; /* a name lookup or connect is in flight */
  uint8_t connected;
  uint8_t pending;  /* server: a connection is waiting to be accepted */
  uint8_t shutting; /* a shutdown request is in flight */
  uint8_t shut;     /* our side is shut down */
  int port;         /* connect: the port to use once the name resolves */
  /* Bytes received and not yet read: buf[start, end). */
  char *buf;
  size_t start, end, cap;
  size_t read_limit;  /* reading pauses with this many bytes buffered */
  size_t queued;      /* bytes handed to uv_write, not yet written */
  size_t write_limit; /* writers wait while more than this is queued */
  fdn_waitq_t readers;
  fdn_waitq_t writers;
  fdn_waitq_t waiters; /* accept, connect, shutdown */
  /* Cancelled when the peer goes away (end of stream or an error) while
   * set: the task serving a request (fdn.http); see tcp_watch.
   */
  fdn_task_t *watcher;
  uv_getaddrinfo_t *lookup;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
};

/* The open stream at L[idx] for `fname`: raises InvalidArgument for a
 * value that is no stream; returns NULL for a closed one.
 */
lfdn_tcp_t *lfdn_tcp_check(lua_State *L, int idx, const char *fname);

/* Bytes buffered and not yet read. */
static inline size_t lfdn_tcp_buffered(const lfdn_tcp_t *s) {
  return s->end - s->start;
}

/* Marks `n` buffered bytes as read. Reading that paused at the read limit
 * resumes when a task next waits for data.
 */
void lfdn_tcp_consume(lfdn_tcp_t *s, size_t n);

/* Parks the running task until more bytes arrive, the peer closes, an
 * error occurs or `timeout_ns` passes (FDN_FOREVER for none); starts
 * reading if needed. Returns what the calling C function must return: the
 * yield, or the "st, cause" pair when the task may not park. The caller
 * has checked that no data is buffered and the stream is not at its end.
 */
int lfdn_tcp_wait_readable(lua_State *L, lfdn_tcp_t *s, uint64_t timeout_ns,
                           const char *fname);

/* Refs the handle while a task waits on the stream, unrefs it otherwise. */
void lfdn_tcp_settle(lfdn_tcp_t *s);

/* Pushes "true, code, message" for the stream's sticky error and returns
 * 3: how a stream operation reports an I/O failure to its Lua wrapper.
 */
int lfdn_tcp_push_error(lua_State *L, int err);

#endif
