/* TCP on libuv: listeners, connections, and the suspending calls that read,
 * write, accept, connect and shut down (wrapped by lua/fdn/tcp.lua).
 *
 * Every suspending call follows docs/internals.md: it returns "false,
 * values..." when it is done, nothing when it was woken and the wrapper
 * should call again, "st, cause" when the task was cancelled, timed out or
 * the stream closed under it, and "true, code, message" for an I/O error
 * (code is libuv's name, such as "ECONNREFUSED"). Tasks wait in the
 * stream's own FIFO queues; libuv callbacks only record what happened and
 * wake them, so a task cancelled while it waits simply leaves the queue.
 *
 * Reading is buffered: once a task asks for data the stream keeps reading
 * until `read_limit` bytes are buffered, then pauses until they are read
 * (backpressure towards the peer). Writing first tries the kernel directly
 * (uv_try_write, no copy); what it does not take is copied into one
 * uv_write request, and a writer waits while more than `write_limit` bytes
 * are queued, so a fast producer cannot outrun a slow peer.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lfdn_tcp.h"
#include "lfdn_wait.h"

#define TCP_INITIAL_BUFFER 8192
#define TCP_MIN_READ 4096
#define TCP_DEFAULT_READ_LIMIT (64 * 1024)
#define TCP_DEFAULT_WRITE_LIMIT (64 * 1024)
#define TCP_MAX_WRITE_BUFS 16

typedef struct {
  uv_write_t req;
  lfdn_tcp_t *stream;
  size_t len;
  char data[];
} tcp_write_t;

/* Lifetime ----------------------------------------------------------------*/

/* A stream keeps the loop alive only while a task waits on it: an idle
 * connection or a listener nobody accepts from must not stop fdn.run from
 * ending (or from seeing a deadlock). Parking refs the handle; wakers and
 * the Lua wrappers (after a wait ended by cancellation or a timeout, which
 * the stream does not see) settle it again.
 */
void lfdn_tcp_settle(lfdn_tcp_t *s) {
  if (s->closed)
    return;
  if (fdn_waitq_len(&s->readers) > 0 || fdn_waitq_len(&s->writers) > 0 ||
      fdn_waitq_len(&s->waiters) > 0)
    uv_ref((uv_handle_t *)&s->handle);
  else
    uv_unref((uv_handle_t *)&s->handle);
}

static void release(lfdn_tcp_t *s) {
  if (--s->refs > 0)
    return;
  free(s->buf);
  free(s);
}

static void on_closed(uv_handle_t *handle) {
  release((lfdn_tcp_t *)handle);
}

/* Closes the stream: waiters wake with Closed, the Lua object forgets it,
 * the handle goes to uv_close. Safe to call twice; never calls Lua.
 */
static void tcp_close(lfdn_tcp_t *s) {
  if (s->closed)
    return;
  s->closed = 1;
  s->watcher = NULL;
  /* A name lookup still running keeps the stream on the engine's list, so
   * that closing the engine waits for it (close_resource).
   */
  if (s->lookup == NULL)
    lfdn_resource_remove(&s->res);
  if (s->box != NULL) {
    *s->box = NULL;
    s->box = NULL;
  }
  fdn_waitq_wake_all(&s->readers, FDN_ECLOSED);
  fdn_waitq_wake_all(&s->writers, FDN_ECLOSED);
  fdn_waitq_wake_all(&s->waiters, FDN_ECLOSED);
  if (s->lookup != NULL)
    uv_cancel((uv_req_t *)s->lookup);
  uv_close((uv_handle_t *)&s->handle, on_closed);
}

/* The engine is closing. A name lookup still running in libuv's thread
 * pool would report to the engine's loop after the engine freed it, so on
 * a loop the engine owns, the loop runs until the lookup has reported (a
 * borrowed loop outlives the engine: the lookup reports there later). The
 * stream may have been closed already, by a task that gave up on its
 * connect: it stays on the list while its lookup runs for this wait.
 */
static void close_resource(lfdn_resource_t *res) {
  lfdn_tcp_t *s = (lfdn_tcp_t *)((char *)res - offsetof(lfdn_tcp_t, res));
  uv_loop_t *loop = s->handle.loop;
  int wait = s->lookup != NULL && fdn_engine_owns_loop(s->engine);
  s->refs++; /* readable until the wait below is over */
  tcp_close(s);
  while (wait && s->lookup != NULL)
    uv_run(loop, UV_RUN_ONCE);
  lfdn_resource_remove(&s->res);
  release(s);
}

/* libuv writes with write(2), so a peer that went away would raise
 * SIGPIPE and kill the process; ignore it unless the host chose a handler.
 */
static void ignore_sigpipe(void) {
  static int done;
  struct sigaction sa;
  if (done)
    return;
  done = 1;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

/* Pushes a new Lua object owning a new stream initialised on `engine`'s
 * loop. Returns NULL (with nothing pushed) on a libuv failure, setting *rc.
 */
static lfdn_tcp_t *tcp_new(lua_State *L, lfdn_engine_t *engine, int kind,
                           int *rc) {
  lfdn_tcp_t **box;
  lfdn_tcp_t *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    *rc = UV_ENOMEM;
    return NULL;
  }
  *rc = uv_tcp_init(fdn_engine_loop(engine->core), &s->handle);
  if (*rc != 0) {
    free(s);
    return NULL;
  }
  ignore_sigpipe();
  uv_unref((uv_handle_t *)&s->handle);
  s->refs = 1;
  s->kind = (uint8_t)kind;
  s->engine = engine->core;
  s->read_limit = TCP_DEFAULT_READ_LIMIT;
  s->write_limit = TCP_DEFAULT_WRITE_LIMIT;
  s->res.close = close_resource;
  fdn_waitq_init(&s->readers);
  fdn_waitq_init(&s->writers);
  fdn_waitq_init(&s->waiters);
  lfdn_resource_add(engine, &s->res);
  /* The box is made last: if it cannot be allocated the stream is closed
   * by the engine, never leaked.
   */
  box = lua_newuserdata(L, sizeof(*box));
  *box = s;
  s->box = box;
  luaL_getmetatable(L, LFDN_TCP_MT);
  lua_setmetatable(L, -2);
  return s;
}

lfdn_tcp_t *lfdn_tcp_check(lua_State *L, int idx, const char *fname) {
  lfdn_tcp_t **box = luaL_testudata(L, idx, LFDN_TCP_MT);
  if (box == NULL) {
    lfdn_argerror(L, fname, "self", "a TCP stream", idx);
    return NULL; /* not reached: lfdn_argerror raises */
  }
  return *box;
}

/* The open stream at index 1 of the given kind, or NULL when closed. */
static lfdn_tcp_t *check_kind(lua_State *L, const char *fname, int kind) {
  lfdn_tcp_t *s = lfdn_tcp_check(L, 1, fname);
  if (s != NULL && s->kind != kind)
    lfdn_argerror(L, fname, "self",
                  kind == LFDN_TCP_CONN ? "a TCP connection" : "a TCP listener",
                  1);
  return s;
}

/* The running task, which must belong to the stream's engine. */
static lfdn_task_t *stream_task(lua_State *L, lfdn_tcp_t *s,
                                const char *fname) {
  lfdn_task_t *task = lfdn_suspendable(L, fname);
  if (task->core.engine != s->engine)
    lfdn_raise(L, "InvalidState",
               "%s: the stream belongs to another engine (each fdn.run has "
               "its own)",
               fname);
  return task;
}

static int push_closed(lua_State *L) {
  lua_pushinteger(L, FDN_ECLOSED);
  lua_pushinteger(L, 0);
  return 2;
}

/* Pushes `first`'s value (nil or true), then libuv's name and message for
 * `err`: the three values every failing tcp_* call returns.
 */
static int push_failure(lua_State *L, int first, int err) {
  if (first)
    lua_pushboolean(L, 1);
  else
    lua_pushnil(L);
  lua_pushstring(L, uv_err_name(err));
  lua_pushstring(L, uv_strerror(err));
  return 3;
}

int lfdn_tcp_push_error(lua_State *L, int err) {
  return push_failure(L, 1, err);
}

/* Parks `task` on `q`; returns the yield, or "st, cause" if it may not. */
static int park_on(lua_State *L, lfdn_tcp_t *s, lfdn_task_t *task,
                   fdn_waitq_t *q, uint64_t timeout, const char *fname) {
  int rc = fdn_task_wait(&task->core, q, timeout);
  if (rc != 0)
    return lfdn_wait_failed(L, task, rc, fname);
  uv_ref((uv_handle_t *)&s->handle);
  lua_settop(L, 0);
  return lfdn_yield(L, task, fname);
}

/* Reading -----------------------------------------------------------------*/

static void on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
  lfdn_tcp_t *s = (lfdn_tcp_t *)handle;
  (void)hint;
  if (s->start == s->end)
    s->start = s->end = 0;
  if (s->cap - s->end < TCP_MIN_READ && s->start > 0) {
    memmove(s->buf, s->buf + s->start, s->end - s->start);
    s->end -= s->start;
    s->start = 0;
  }
  if (s->cap - s->end < TCP_MIN_READ) {
    size_t cap = s->cap ? s->cap * 2 : TCP_INITIAL_BUFFER;
    char *grown = realloc(s->buf, cap);
    if (grown != NULL) {
      s->buf = grown;
      s->cap = cap;
    }
  }
  /* With no room, libuv reports UV_ENOBUFS to on_read. */
  buf->base = s->buf + s->end;
  buf->len = s->cap - s->end;
}

static void stop_reading(lfdn_tcp_t *s) {
  if (s->reading) {
    uv_read_stop((uv_stream_t *)&s->handle);
    s->reading = 0;
  }
}

/* The peer went away: the watching task, if any, is cancelled. */
static void peer_gone(lfdn_tcp_t *s) {
  fdn_task_t *watcher = s->watcher;
  if (watcher != NULL) {
    s->watcher = NULL;
    fdn_task_cancel(watcher);
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  lfdn_tcp_t *s = (lfdn_tcp_t *)stream;
  (void)buf;
  if (nread > 0) {
    s->end += (size_t)nread;
    if (lfdn_tcp_buffered(s) >= s->read_limit)
      stop_reading(s);
  } else if (nread == UV_EOF) {
    s->eof = 1;
    stop_reading(s);
    peer_gone(s);
  } else if (nread < 0) {
    if (s->err == 0)
      s->err = (int)nread;
    stop_reading(s);
    peer_gone(s);
  } else {
    return; /* EAGAIN: nothing read */
  }
  fdn_waitq_wake_all(&s->readers, 0);
  lfdn_tcp_settle(s);
}

static int start_reading(lfdn_tcp_t *s) {
  int rc;
  if (s->reading || s->eof || s->err != 0)
    return 0;
  rc = uv_read_start((uv_stream_t *)&s->handle, on_alloc, on_read);
  if (rc != 0) {
    s->err = rc;
    return rc;
  }
  s->reading = 1;
  return 0;
}

void lfdn_tcp_consume(lfdn_tcp_t *s, size_t n) {
  s->start += n;
  if (s->start == s->end)
    s->start = s->end = 0;
}

int lfdn_tcp_wait_readable(lua_State *L, lfdn_tcp_t *s, uint64_t timeout_ns,
                           const char *fname) {
  lfdn_task_t *task = stream_task(L, s, fname);
  int rc = start_reading(s);
  if (rc != 0)
    return lfdn_tcp_push_error(L, rc);
  return park_on(L, s, task, &s->readers, timeout_ns, fname);
}

/* An optional byte count at idx (the default read limit when nil). */
static lua_Number opt_count(lua_State *L, int idx, const char *fname,
                            const char *param) {
  if (lua_isnoneornil(L, idx))
    return (lua_Number)TCP_DEFAULT_READ_LIMIT;
  if (lua_type(L, idx) != LUA_TNUMBER)
    lfdn_argerror(L, fname, param, "a positive integer", idx);
  return lua_tonumber(L, idx);
}

/* tcp_read(conn, n, timeout): "false, bytes" (at most n), "false, nil" at
 * the end of the stream.
 */
static int l_read(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:read", LFDN_TCP_CONN);
  lua_Number want = opt_count(L, 2, "conn:read", "max");
  uint64_t timeout = lfdn_check_timeout(L, 3, "conn:read");
  size_t n;
  if (!(want >= 1) || want != (lua_Number)(size_t)want)
    return lfdn_argerror(L, "conn:read", "max", "a positive integer", 2);
  if (s == NULL)
    return push_closed(L);
  n = lfdn_tcp_buffered(s);
  if (n > 0) {
    if (n > (size_t)want)
      n = (size_t)want;
    lua_pushboolean(L, 0);
    lua_pushlstring(L, s->buf + s->start, n);
    lfdn_tcp_consume(s, n);
    return 2;
  }
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->eof) {
    lua_pushboolean(L, 0);
    lua_pushnil(L);
    return 2;
  }
  return lfdn_tcp_wait_readable(L, s, timeout, "conn:read");
}

static const char *find(const char *hay, size_t n, const char *needle,
                        size_t m) {
  const char *end = hay + n, *p = hay;
  if (m == 0 || n < m)
    return NULL;
  while ((p = memchr(p, needle[0], (size_t)(end - p))) != NULL) {
    if ((size_t)(end - p) < m)
      return NULL;
    if (memcmp(p, needle, m) == 0)
      return p;
    p++;
  }
  return NULL;
}

/* tcp_read_until(conn, delim, max, timeout): "false, bytes" (without the
 * delimiter, which is consumed); "false, nil, rest" at the end of the
 * stream; "true, 'ELIMIT', message" when `max` bytes came without it.
 */
static int l_read_until(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:read_until", LFDN_TCP_CONN);
  size_t dlen, n;
  const char *delim = lua_tolstring(L, 2, &dlen);
  lua_Number max;
  uint64_t timeout;
  const char *at, *data;
  if (lua_type(L, 2) != LUA_TSTRING || dlen == 0)
    return lfdn_argerror(L, "conn:read_until", "delimiter",
                         "a non-empty string", 2);
  max = opt_count(L, 3, "conn:read_until", "max");
  timeout = lfdn_check_timeout(L, 4, "conn:read_until");
  if (!(max >= 1) || max != (lua_Number)(size_t)max)
    return lfdn_argerror(L, "conn:read_until", "max", "a positive integer", 3);
  if (s == NULL)
    return push_closed(L);
  n = lfdn_tcp_buffered(s);
  /* No buffer yet before the first read: no pointer arithmetic on NULL. */
  data = s->buf != NULL ? s->buf + s->start : "";
  at = find(data, n, delim, dlen);
  if (at != NULL && (size_t)(at - data) <= (size_t)max) {
    size_t len = (size_t)(at - data);
    lua_pushboolean(L, 0);
    lua_pushlstring(L, data, len);
    lfdn_tcp_consume(s, len + dlen);
    return 2;
  }
  if (n > (size_t)max + dlen || at != NULL) {
    lua_pushboolean(L, 1);
    lua_pushliteral(L, "ELIMIT");
    lua_pushfstring(L, "no delimiter within %d bytes", (int)max);
    return 3;
  }
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->eof) {
    lua_pushboolean(L, 0);
    lua_pushnil(L);
    if (n > 0)
      lua_pushlstring(L, data, n);
    else
      lua_pushnil(L);
    lfdn_tcp_consume(s, n);
    return 3;
  }
  /* The buffer may need to hold `max` bytes to find the delimiter. */
  if (s->read_limit < (size_t)max + dlen)
    s->read_limit = (size_t)max + dlen;
  return lfdn_tcp_wait_readable(L, s, timeout, "conn:read_until");
}

/* Writing -----------------------------------------------------------------*/

static void on_write(uv_write_t *req, int status) {
  tcp_write_t *w = (tcp_write_t *)req;
  lfdn_tcp_t *s = w->stream;
  s->queued -= w->len;
  if (status < 0 && status != UV_ECANCELED && s->err == 0)
    s->err = status;
  free(w);
  if (s->queued <= s->write_limit || status < 0) {
    fdn_waitq_wake_all(&s->writers, 0);
    lfdn_tcp_settle(s);
  }
}

/* tcp_write(conn, timeout, s1, s2, ...): writes the strings in order.
 * "false" once they are written or queued within the limit; nothing when
 * the writer waited for the queue to drain (call tcp_wait_writable).
 */
static int l_write(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:write", LFDN_TCP_CONN);
  uint64_t timeout = lfdn_check_timeout(L, 2, "conn:write");
  uv_buf_t bufs[TCP_MAX_WRITE_BUFS];
  int nbufs = lua_gettop(L) - 2, i, first = 0, rc;
  size_t total = 0, left, off;
  tcp_write_t *w;
  if (nbufs > TCP_MAX_WRITE_BUFS)
    return lfdn_argerror(L, "conn:write", "data", "at most 16 strings per call",
                         TCP_MAX_WRITE_BUFS + 3);
  for (i = 0; i < nbufs; i++) {
    size_t len;
    const char *p;
    if (lua_type(L, i + 3) != LUA_TSTRING)
      return lfdn_argerror(L, "conn:write", "data", "strings", i + 3);
    p = lua_tolstring(L, i + 3, &len);
    bufs[i] = uv_buf_init((char *)p, (unsigned int)len);
    total += len;
  }
  if (s == NULL)
    return push_closed(L);
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->shut || s->shutting)
    return lfdn_raise(L, "InvalidState",
                      "conn:write: the stream was shut "
                      "down for writing");
  if (total == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* A write that may have to wait is refused before anything is sent
   * where the caller cannot wait, so a failed call has written nothing.
   */
  if (s->queued + total > s->write_limit)
    stream_task(L, s, "conn:write");
  left = total;
  if (s->queued == 0) {
    rc = uv_try_write((uv_stream_t *)&s->handle, bufs, (unsigned)nbufs);
    if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS) {
      s->err = rc;
      return lfdn_tcp_push_error(L, rc);
    }
    if (rc > 0) {
      size_t done = (size_t)rc;
      left -= done;
      while (first < nbufs && done >= bufs[first].len)
        done -= bufs[first++].len;
      if (first < nbufs) {
        bufs[first].base += done;
        bufs[first].len -= (unsigned int)done;
      }
    }
  }
  if (left > 0) {
    /* One copy of what the kernel did not take, in one request. */
    w = malloc(sizeof(*w) + left);
    if (w == NULL)
      return lfdn_raise(L, "Error", "conn:write: out of memory");
    off = 0;
    for (i = first; i < nbufs; i++) {
      memcpy(w->data + off, bufs[i].base, bufs[i].len);
      off += bufs[i].len;
    }
    w->stream = s;
    w->len = left;
    bufs[0] = uv_buf_init(w->data, (unsigned int)left);
    rc = uv_write(&w->req, (uv_stream_t *)&s->handle, bufs, 1, on_write);
    if (rc != 0) {
      free(w);
      s->err = rc;
      return lfdn_tcp_push_error(L, rc);
    }
    s->queued += left;
    if (s->queued > s->write_limit) {
      lfdn_task_t *task = stream_task(L, s, "conn:write");
      return park_on(L, s, task, &s->writers, timeout, "conn:write");
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* tcp_wait_writable(conn, timeout, limit): "false" once at most `limit`
 * bytes (default: the write limit) are still queued.
 */
static int l_wait_writable(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:write", LFDN_TCP_CONN);
  uint64_t timeout = lfdn_check_timeout(L, 2, "conn:write");
  size_t limit;
  if (s == NULL)
    return push_closed(L);
  limit = lua_isnoneornil(L, 3) ? s->write_limit : (size_t)lua_tonumber(L, 3);
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->queued <= limit) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return park_on(L, s, stream_task(L, s, "conn:write"), &s->writers, timeout,
                 "conn:write");
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  lfdn_tcp_t *s = req->data;
  s->shutting = 0;
  s->shut = 1;
  if (status < 0 && status != UV_ECANCELED && s->err == 0)
    s->err = status;
  fdn_waitq_wake_all(&s->waiters, 0);
  lfdn_tcp_settle(s);
}

/* tcp_shutdown(conn, timeout): shuts our side down once queued writes are
 * done; "false" when it is.
 */
static int l_shutdown(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:shutdown", LFDN_TCP_CONN);
  uint64_t timeout = lfdn_check_timeout(L, 2, "conn:shutdown");
  int rc;
  if (s == NULL)
    return push_closed(L);
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->shut) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* Where the caller cannot wait, fail before the stream is shut. */
  stream_task(L, s, "conn:shutdown");
  if (!s->shutting) {
    s->shutdown_req.data = s;
    rc = uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->handle, on_shutdown);
    if (rc != 0) {
      s->err = rc;
      return lfdn_tcp_push_error(L, rc);
    }
    s->shutting = 1;
  }
  return park_on(L, s, stream_task(L, s, "conn:shutdown"), &s->waiters, timeout,
                 "conn:shutdown");
}

/* Listening and accepting -------------------------------------------------*/

static int parse_address(const char *host, int port,
                         struct sockaddr_storage *ss) {
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
}

static int check_port(lua_State *L, int idx, const char *fname, int allow0) {
  lua_Number port = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || port != (lua_Number)(int)port ||
      port < (allow0 ? 0 : 1) || port > 65535)
    lfdn_argerror(L, fname, "port",
                  allow0 ? "an integer from 0 to 65535"
                         : "an integer from 1 to 65535",
                  idx);
  return (int)port;
}

static void on_connection(uv_stream_t *server, int status) {
  lfdn_tcp_t *s = (lfdn_tcp_t *)server;
  if (status < 0) {
    /* Transient (EMFILE, ENOBUFS): the next accept reports it once. */
    s->err = status;
  } else {
    s->pending = 1;
  }
  fdn_waitq_wake_one(&s->waiters, 0);
  lfdn_tcp_settle(s);
}

/* tcp_listen(host, port, backlog) -> listener | nil, code, message */
static int l_listen(lua_State *L) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, "fdn.tcp.listen");
  const char *host = lua_tostring(L, 1);
  int port, backlog, rc;
  struct sockaddr_storage ss;
  lfdn_tcp_t *s;
  if (lua_type(L, 1) != LUA_TSTRING)
    return lfdn_argerror(L, "fdn.tcp.listen", "host", "an IP address string",
                         1);
  port = check_port(L, 2, "fdn.tcp.listen", 1);
  backlog = lua_isnoneornil(L, 3) ? 511 : (int)lua_tonumber(L, 3);
  if (!lua_isnoneornil(L, 3) && (lua_type(L, 3) != LUA_TNUMBER || backlog < 1))
    return lfdn_argerror(L, "fdn.tcp.listen", "backlog", "a positive integer",
                         3);
  if (parse_address(host, port, &ss) != 0)
    return lfdn_argerror(L, "fdn.tcp.listen", "host", "an IPv4 or IPv6 address",
                         1);
  s = tcp_new(L, engine, LFDN_TCP_SERVER, &rc);
  if (s == NULL)
    goto failed;
  rc = uv_tcp_bind(&s->handle, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->handle, backlog, on_connection);
  if (rc != 0) {
    tcp_close(s);
    goto failed;
  }
  return 1;
failed:
  return push_failure(L, 0, rc);
}

/* tcp_accept(listener, timeout): "false, conn" */
static int l_accept(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "listener:accept", LFDN_TCP_SERVER);
  uint64_t timeout = lfdn_check_timeout(L, 2, "listener:accept");
  lfdn_tcp_t *conn;
  lfdn_engine_t *engine;
  int rc;
  if (s == NULL)
    return push_closed(L);
  if (s->err != 0) {
    rc = s->err;
    s->err = 0;
    return lfdn_tcp_push_error(L, rc);
  }
  if (!s->pending)
    return park_on(L, s, stream_task(L, s, "listener:accept"), &s->waiters,
                   timeout, "listener:accept");
  stream_task(L, s, "listener:accept");
  engine = fdn_engine_get_data(s->engine);
  lua_pushboolean(L, 0);
  conn = tcp_new(L, engine, LFDN_TCP_CONN, &rc);
  if (conn == NULL)
    return lfdn_tcp_push_error(L, rc);
  s->pending = 0;
  rc = uv_accept((uv_stream_t *)&s->handle, (uv_stream_t *)&conn->handle);
  if (rc != 0) {
    tcp_close(conn);
    return lfdn_tcp_push_error(L, rc);
  }
  conn->connected = 1;
  uv_tcp_nodelay(&conn->handle, 1);
  return 2;
}

/* Connecting --------------------------------------------------------------*/

static void on_connect(uv_connect_t *req, int status) {
  lfdn_tcp_t *s = req->data;
  s->connecting = 0;
  if (status == 0) {
    s->connected = 1;
    uv_tcp_nodelay(&s->handle, 1);
  } else if (s->err == 0) {
    s->err = status;
  }
  fdn_waitq_wake_all(&s->waiters, 0);
  lfdn_tcp_settle(s);
}

static int start_connect(lfdn_tcp_t *s, const struct sockaddr *addr) {
  int rc;
  s->connect_req.data = s;
  rc = uv_tcp_connect(&s->connect_req, &s->handle, addr, on_connect);
  if (rc != 0)
    s->connecting = 0;
  return rc;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  lfdn_tcp_t *s = req->data;
  struct addrinfo *ai, *pick = NULL;
  free(req);
  s->lookup = NULL;
  if (s->closed) {
    lfdn_resource_remove(&s->res); /* kept while the lookup ran */
    uv_freeaddrinfo(res);
    release(s);
    return;
  }
  if (status == 0) {
    /* IPv4 first: a server bound to 127.0.0.1 is what "localhost" means
     * to most scripts, and many resolvers list ::1 first.
     */
    for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
      if (ai->ai_family == AF_INET)
        pick = ai;
    for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
      if (ai->ai_family == AF_INET6)
        pick = ai;
    if (pick == NULL) {
      status = UV_EAI_NONAME;
    } else {
      if (pick->ai_family == AF_INET)
        ((struct sockaddr_in *)pick->ai_addr)->sin_port =
            htons((uint16_t)s->port);
      else
        ((struct sockaddr_in6 *)pick->ai_addr)->sin6_port =
            htons((uint16_t)s->port);
      status = start_connect(s, pick->ai_addr);
    }
  }
  uv_freeaddrinfo(res);
  if (status != 0) {
    s->connecting = 0;
    if (s->err == 0)
      s->err = status;
    fdn_waitq_wake_all(&s->waiters, 0);
    lfdn_tcp_settle(s);
  }
  release(s);
}

/* tcp_connect(host, port) -> conn (connecting) | nil, code, message */
static int l_connect(lua_State *L) {
  lfdn_engine_t *engine = lfdn_engine_bound(L, "fdn.tcp.connect");
  const char *host = lua_tostring(L, 1);
  int port, rc;
  struct sockaddr_storage ss;
  lfdn_tcp_t *s;
  if (lua_type(L, 1) != LUA_TSTRING || lua_objlen(L, 1) == 0)
    return lfdn_argerror(L, "fdn.tcp.connect", "host",
                         "a host name or IP address", 1);
  port = check_port(L, 2, "fdn.tcp.connect", 0);
  if (port == 0)
    return lfdn_argerror(L, "fdn.tcp.connect", "port",
                         "an integer from 1 to 65535", 2);
  s = tcp_new(L, engine, LFDN_TCP_CONN, &rc);
  if (s == NULL)
    goto failed;
  s->connecting = 1;
  s->port = port;
  if (parse_address(host, port, &ss) == 0) {
    rc = start_connect(s, (struct sockaddr *)&ss);
  } else {
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->lookup = malloc(sizeof(*s->lookup));
    if (s->lookup == NULL) {
      rc = UV_ENOMEM;
    } else {
      s->lookup->data = s;
      rc = uv_getaddrinfo(fdn_engine_loop(engine->core), s->lookup, on_resolved,
                          host, NULL, &hints);
      if (rc != 0) {
        free(s->lookup);
        s->lookup = NULL;
      } else {
        s->refs++; /* the lookup holds the record until its callback */
      }
    }
  }
  if (rc != 0) {
    tcp_close(s);
    goto failed;
  }
  return 1;
failed:
  return push_failure(L, 0, rc);
}

/* tcp_connect_wait(conn, timeout): "false" once connected. */
static int l_connect_wait(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "fdn.tcp.connect", LFDN_TCP_CONN);
  uint64_t timeout = lfdn_check_timeout(L, 2, "fdn.tcp.connect");
  if (s == NULL)
    return push_closed(L);
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->connected) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return park_on(L, s, stream_task(L, s, "fdn.tcp.connect"), &s->waiters,
                 timeout, "fdn.tcp.connect");
}

/* tcp_watch(conn, on): while on, the running task is cancelled as soon as
 * the peer goes away (the end of its stream, or a reset), at once if it
 * already has; off forgets the task. The stream reads ahead (within its
 * read limit) to notice. fdn.http turns it on around a handler, so a
 * handler whose client left stops at its next suspension. The task must
 * turn it off before it ends (closing the stream also forgets it).
 */
static int l_watch(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:watch", LFDN_TCP_CONN);
  lfdn_task_t *task;
  if (s == NULL)
    return 0;
  if (!lua_toboolean(L, 2)) {
    s->watcher = NULL;
    return 0;
  }
  task = lfdn_suspendable_fast(L);
  if (task == NULL)
    return 0; /* nothing that could be cancelled at a suspension */
  if (s->eof || s->err != 0) {
    fdn_task_cancel(&task->core);
    return 0;
  }
  s->watcher = &task->core;
  if (lfdn_tcp_buffered(s) < s->read_limit && start_reading(s) != 0)
    peer_gone(s);
  return 0;
}

/* Methods -----------------------------------------------------------------*/

/* settle(stream): after a wait that ended without the stream's doing. */
static int l_settle(lua_State *L) {
  lfdn_tcp_t *s = lfdn_tcp_check(L, 1, "stream:settle");
  if (s != NULL)
    lfdn_tcp_settle(s);
  return 0;
}

static int l_close(lua_State *L) {
  lfdn_tcp_t *s = lfdn_tcp_check(L, 1, "stream:close");
  if (s != NULL)
    tcp_close(s);
  return 0;
}

static int l_is_closed(lua_State *L) {
  lua_pushboolean(L, lfdn_tcp_check(L, 1, "stream:is_closed") == NULL);
  return 1;
}

static int push_address(lua_State *L, const struct sockaddr_storage *ss) {
  char ip[64];
  int port;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof(ip));
    port = ntohs(a->sin6_port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof(ip));
    port = ntohs(a->sin_port);
  }
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

/* address(): the local ip, port; peer(): the remote ip, port. nil when
 * closed or not connected.
 */
static int l_address(lua_State *L) {
  lfdn_tcp_t *s = lfdn_tcp_check(L, 1, "stream:address");
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (s == NULL ||
      uv_tcp_getsockname(&s->handle, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return push_address(L, &ss);
}

static int l_peer(lua_State *L) {
  lfdn_tcp_t *s = lfdn_tcp_check(L, 1, "conn:peer");
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (s == NULL || s->kind != LFDN_TCP_CONN ||
      uv_tcp_getpeername(&s->handle, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  return push_address(L, &ss);
}

static int l_nodelay(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:nodelay", LFDN_TCP_CONN);
  if (!lua_isboolean(L, 2))
    return lfdn_argerror(L, "conn:nodelay", "on", "a boolean", 2);
  if (s != NULL)
    uv_tcp_nodelay(&s->handle, lua_toboolean(L, 2));
  return 0;
}

static int l_buffered(lua_State *L) {
  lfdn_tcp_t *s = lfdn_tcp_check(L, 1, "conn:buffered");
  lua_pushnumber(L, s ? (lua_Number)lfdn_tcp_buffered(s) : 0);
  lua_pushnumber(L, s ? (lua_Number)s->queued : 0);
  return 2;
}

static size_t check_limit(lua_State *L, int idx, const char *param) {
  lua_Number n = lua_tonumber(L, idx);
  if (lua_type(L, idx) != LUA_TNUMBER || !(n >= 1) || n > 1e12 ||
      n != (lua_Number)(size_t)n)
    lfdn_argerror(L, "conn:set_limits", param, "a positive integer", idx);
  return (size_t)n;
}

/* set_limits(read_limit, write_limit): either may be nil to keep it. */
static int l_set_limits(lua_State *L) {
  lfdn_tcp_t *s = check_kind(L, "conn:set_limits", LFDN_TCP_CONN);
  size_t r = 0, w = 0;
  if (!lua_isnoneornil(L, 2))
    r = check_limit(L, 2, "read_limit");
  if (!lua_isnoneornil(L, 3))
    w = check_limit(L, 3, "write_limit");
  if (s == NULL)
    return 0;
  if (r)
    s->read_limit = r;
  if (w)
    s->write_limit = w;
  return 0;
}

static int l_tostring(lua_State *L) {
  lfdn_tcp_t **box = lua_touserdata(L, 1);
  lfdn_tcp_t *s = *box;
  if (s == NULL)
    lua_pushliteral(L, "fdn.tcp(closed)");
  else
    lua_pushfstring(L, "fdn.tcp(%s)",
                    s->kind == LFDN_TCP_SERVER ? "listener" : "connection");
  return 1;
}

/* A stream whose Lua object is collected while open is closed then. */
static int l_gc(lua_State *L) {
  lfdn_tcp_t **box = lua_touserdata(L, 1);
  lfdn_tcp_t *s = *box;
  if (s != NULL) {
    s->box = NULL;
    *box = NULL;
    tcp_close(s);
  }
  return 0;
}

void lfdn_open_tcp(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"close", l_close},           {"is_closed", l_is_closed},
      {"address", l_address},       {"peer", l_peer},
      {"nodelay", l_nodelay},       {"buffered", l_buffered},
      {"set_limits", l_set_limits}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"tcp_listen", l_listen},     {"tcp_accept", l_accept},
      {"tcp_connect", l_connect},   {"tcp_connect_wait", l_connect_wait},
      {"tcp_read", l_read},         {"tcp_read_until", l_read_until},
      {"tcp_write", l_write},       {"tcp_wait_writable", l_wait_writable},
      {"tcp_shutdown", l_shutdown}, {"tcp_settle", l_settle},
      {"tcp_watch", l_watch},       {NULL, NULL}};
  int state = lua_gettop(L), module = state - 1;
  luaL_newmetatable(L, LFDN_TCP_MT);
  lua_newtable(L);
  lua_pushvalue(L, state);
  luaL_setfuncs(L, methods, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, module, "tcp_methods");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "fdn.tcp");
  lua_setfield(L, -2, "__name");
  lua_settop(L, state);
  lfdn_register(L, funcs);
}
