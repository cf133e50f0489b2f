/* HTTP/1.1 message framing for fdn.http, on the http_parser library
 * (Debian's libhttp-parser, the parser Node.js used for a decade): it
 * validates request lines, header tokens, Content-Length and chunked
 * framing, and refuses the ambiguous framings request smuggling relies on
 * (Content-Length together with Transfer-Encoding, duplicate lengths).
 *
 * A parser reads straight out of a TCP stream's buffer (lfdn_tcp.h). The
 * head is parsed only once all of it is buffered, so every URL and header
 * callback sees one contiguous piece and the strings are made once. Bodies
 * are pulled a piece at a time: the parser is paused after each body
 * callback, and what follows the message (a pipelined request) is left in
 * the buffer for the next head. The suspending calls follow the protocol
 * of l_tcp.c; protocol failures come back as "false, nil, kind, message"
 * with kind one of "eof" (the peer closed before a message began),
 * "incomplete" (it closed in the middle of one), "too_large" (the head
 * exceeds its limit), "uri_too_long", "too_many_headers" or "bad".
 */
#include <ctype.h>
#include <http_parser.h>
#include <string.h>

#include "lfdn_tcp.h"
#include "lfdn_wait.h"

#define LFDN_HTTP_MT "fdn.http_parser"

enum { P_HEAD = 0, P_BODY = 1, P_DONE = 2, P_FAILED = 3 };

typedef struct {
  http_parser p;
  uint8_t kind;      /* HTTP_REQUEST or HTTP_RESPONSE */
  uint8_t state;     /* P_* */
  uint8_t skip_body; /* a response to HEAD: no body whatever it says */
  uint8_t complete;  /* on_message_complete fired */
  uint8_t headers_done;
  uint8_t too_many;
  uint8_t keep_alive, chunked, upgrade;
  uint64_t content_length; /* UINT64_MAX: none given */
  size_t scanned;          /* head bytes already searched for its end */
  int max_fields, nfields;
  /* Valid while a head is parsed. */
  lua_State *L;
  int headers, raw; /* stack indices of the header table and raw list */
  const char *url, *field, *body;
  size_t url_len, field_len, body_len;
} lhttp_t;

static lhttp_t *check_parser(lua_State *L, const char *fname) {
  lhttp_t *h = luaL_testudata(L, 1, LFDN_HTTP_MT);
  if (h == NULL)
    lfdn_argerror(L, fname, "parser", "an HTTP parser", 1);
  return h;
}

/* Callbacks ---------------------------------------------------------------*/

static int on_url(http_parser *p, const char *at, size_t len) {
  lhttp_t *h = p->data;
  if (h->url != NULL && h->url + h->url_len == at)
    h->url_len += len;
  else {
    h->url = at;
    h->url_len = len;
  }
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  lhttp_t *h = p->data;
  h->field = at;
  h->field_len = len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  lhttp_t *h = p->data;
  lua_State *L = h->L;
  luaL_Buffer b;
  size_t i;
  if (++h->nfields > h->max_fields) {
    h->too_many = 1;
    return 1;
  }
  while (len > 0 && (at[len - 1] == ' ' || at[len - 1] == '\t'))
    len--;
  luaL_buffinit(L, &b);
  for (i = 0; i < h->field_len; i++)
    luaL_addchar(&b, (char)tolower((unsigned char)h->field[i]));
  luaL_pushresult(&b);
  if (h->raw != 0) {
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, h->field, h->field_len);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, at, len);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, h->raw, (int)lua_objlen(L, h->raw) + 1);
  }
  lua_pushvalue(L, -1);
  lua_rawget(L, h->headers);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushlstring(L, at, len);
  } else {
    /* Repeated fields join into one list (RFC 9110, 5.3); cookies with
     * "; " as a user agent would have sent them.
     */
    const char *name = lua_tostring(L, -2);
    lua_pushstring(L, strcmp(name, "cookie") == 0 ? "; " : ", ");
    lua_pushlstring(L, at, len);
    lua_concat(L, 3);
  }
  lua_rawset(L, h->headers);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  lhttp_t *h = p->data;
  h->headers_done = 1;
  h->keep_alive = (uint8_t)http_should_keep_alive(p);
  h->chunked = (p->flags & F_CHUNKED) != 0;
  h->upgrade = (uint8_t)p->upgrade;
  h->content_length = h->chunked ? UINT64_MAX : p->content_length;
  http_parser_pause(p, 1);
  return h->skip_body ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  lhttp_t *h = p->data;
  h->body = at;
  h->body_len = len;
  http_parser_pause(p, 1);
  return 0;
}

static int on_message_complete(http_parser *p) {
  lhttp_t *h = p->data;
  h->complete = 1;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_status = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Runs the parser over `len` bytes; returns how many it took. A pause (how
 * the callbacks stop it) is not a failure: it is lifted here.
 */
static size_t execute(lhttp_t *h, const char *data, size_t len) {
  size_t n = http_parser_execute(&h->p, &settings, data, len);
  if (HTTP_PARSER_ERRNO(&h->p) == HPE_PAUSED)
    http_parser_pause(&h->p, 0);
  return n;
}

static int failed(lua_State *L, lhttp_t *h, const char *kind,
                  const char *message) {
  h->state = P_FAILED;
  lua_pushboolean(L, 0);
  lua_pushnil(L);
  lua_pushstring(L, kind);
  lua_pushstring(L, message);
  return 4;
}

static int parse_error(lua_State *L, lhttp_t *h) {
  enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
  if (h->too_many)
    return failed(L, h, "too_many_headers", "too many header fields");
  if (e == HPE_HEADER_OVERFLOW)
    return failed(L, h, "too_large", "the header section is too large");
  lua_pushfstring(L, "%s: %s", http_errno_name(e), http_errno_description(e));
  return failed(L, h, "bad", lua_tostring(L, -1));
}

/* The end of the head in buf[0, n): the offset just past its empty line,
 * or 0 when it has not all come. Lines may end in CRLF or a bare LF.
 */
static size_t head_end(const char *buf, size_t n, size_t from) {
  const char *p, *end;
  if (from >= n)
    return 0;
  p = buf + from;
  end = buf + n;
  while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    if (p + 1 < end && p[1] == '\n')
      return (size_t)(p + 2 - buf);
    if (p + 2 < end && p[1] == '\r' && p[2] == '\n')
      return (size_t)(p + 3 - buf);
    p++;
  }
  return 0;
}

/* Lua API -----------------------------------------------------------------*/

/* http_parser_new(kind) -> parser; kind "request" or "response". */
static int l_new(lua_State *L) {
  const char *kind = lua_tostring(L, 1);
  lhttp_t *h;
  if (kind == NULL ||
      (strcmp(kind, "request") != 0 && strcmp(kind, "response") != 0))
    return lfdn_argerror(L, "http_parser_new", "kind",
                         "\"request\" or \"response\"", 1);
  h = lua_newuserdata(L, sizeof(*h));
  memset(h, 0, sizeof(*h));
  h->kind = kind[2] == 'q' ? HTTP_REQUEST : HTTP_RESPONSE;
  h->state = P_DONE;
  luaL_getmetatable(L, LFDN_HTTP_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* http_read_head(parser, conn, max_size, max_fields, timeout, skip_body)
 * reads the next message's head.
 * Request:  false, method, target, headers, version, keep_alive,
 *           content_length|nil, chunked, body_pending, upgrade
 * Response: false, status, reason, headers, version, keep_alive,
 *           content_length|nil, chunked, body_pending, raw_headers
 * A message still in its body is first skipped to its end.
 */
static int l_read_head(lua_State *L) {
  lhttp_t *h = check_parser(L, "http_read_head");
  lfdn_tcp_t *s = lfdn_tcp_check(L, 2, "http_read_head");
  size_t max_size = (size_t)luaL_checknumber(L, 3), n, end, used;
  int max_fields = (int)luaL_checknumber(L, 4);
  uint64_t timeout = lfdn_check_timeout(L, 5, "http_read_head");
  const char *buf;
  if (s == NULL) {
    lua_pushinteger(L, FDN_ECLOSED);
    lua_pushinteger(L, 0);
    return 2;
  }
  if (h->state == P_BODY || h->state == P_FAILED)
    return lfdn_raise(L, "InvalidState",
                      "http_read_head: the previous message was not read to "
                      "its end");
  if (h->state == P_DONE) {
    http_parser_init(&h->p, (enum http_parser_type)h->kind);
    h->p.data = h;
    h->state = P_HEAD;
    h->scanned = 0;
  }
  h->skip_body = (uint8_t)lua_toboolean(L, 6);
  n = lfdn_tcp_buffered(s);
  buf = s->buf != NULL ? s->buf + s->start : "";
  end = head_end(buf, n < max_size ? n : max_size,
                 h->scanned > 2 ? h->scanned - 2 : 0);
  if (end == 0) {
    h->scanned = n;
    if (n >= max_size)
      return memchr(buf, '\n', max_size) == NULL
                 ? failed(L, h, "uri_too_long", "the request line is too long")
                 : failed(L, h, "too_large", "the header section is too large");
    if (s->err != 0)
      return lfdn_tcp_push_error(L, s->err);
    if (s->eof)
      return n == 0 ? failed(L, h, "eof", "the peer closed the connection")
                    : failed(L, h, "incomplete",
                             "the peer closed the connection in the middle "
                             "of a message head");
    return lfdn_tcp_wait_readable(L, s, timeout, "http_read_head");
  }
  lua_settop(L, 6);
  lua_pushboolean(L, 0);    /* 7 */
  lua_pushnil(L);           /* 8: method or status */
  lua_pushnil(L);           /* 9: target or reason */
  lua_createtable(L, 0, 8); /* 10: headers */
  h->L = L;
  h->headers = 10;
  h->raw = 0;
  if (h->kind == HTTP_RESPONSE) {
    lua_newtable(L);
    h->raw = lua_gettop(L);
  }
  h->url = h->field = h->body = NULL;
  h->url_len = h->field_len = 0;
  h->nfields = 0;
  h->max_fields = max_fields;
  h->too_many = h->complete = h->headers_done = 0;
  used = execute(h, buf, end);
  if (h->headers_done && HTTP_PARSER_ERRNO(&h->p) == HPE_OK && used < end)
    used += execute(h, buf + used, end - used);
  h->L = NULL;
  if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK)
    return parse_error(L, h);
  lfdn_tcp_consume(s, end);
  h->scanned = 0;
  if (!h->headers_done) {
    /* Only empty lines, which may come before a request line: go on. */
    lua_settop(L, 0);
    return 0;
  }
  h->state = h->complete ? P_DONE : P_BODY;
  if (h->kind == HTTP_REQUEST) {
    lua_pushstring(L, http_method_str((enum http_method)h->p.method));
    lua_replace(L, 8);
  } else {
    lua_pushinteger(L, h->p.status_code);
    lua_replace(L, 8);
  }
  lua_pushlstring(L, h->url ? h->url : "", h->url_len);
  lua_replace(L, 9);
  lua_settop(L, h->kind == HTTP_RESPONSE ? 11 : 10);
  lua_pushfstring(L, "%d.%d", (int)h->p.http_major, (int)h->p.http_minor);
  lua_pushboolean(L, h->keep_alive && !h->upgrade);
  if (h->content_length != UINT64_MAX)
    lua_pushnumber(L, (lua_Number)h->content_length);
  else
    lua_pushnil(L);
  lua_pushboolean(L, h->chunked);
  lua_pushboolean(L, h->state == P_BODY);
  if (h->kind == HTTP_REQUEST) {
    lua_pushboolean(L, h->upgrade);
    return 10;
  }
  lua_pushvalue(L, 11);
  lua_remove(L, 11);
  return 10;
}

/* http_read_body(parser, conn, timeout): "false, piece" for the next piece
 * of the body (chunked framing removed); "false, nil" once it has ended.
 */
static int l_read_body(lua_State *L) {
  lhttp_t *h = check_parser(L, "http_read_body");
  lfdn_tcp_t *s = lfdn_tcp_check(L, 2, "http_read_body");
  uint64_t timeout = lfdn_check_timeout(L, 3, "http_read_body");
  if (h->state == P_DONE) {
    lua_pushboolean(L, 0);
    lua_pushnil(L);
    return 2;
  }
  if (h->state != P_BODY)
    return lfdn_raise(L, "InvalidState",
                      "http_read_body: no message body is being read");
  if (s == NULL) {
    lua_pushinteger(L, FDN_ECLOSED);
    lua_pushinteger(L, 0);
    return 2;
  }
  while (lfdn_tcp_buffered(s) > 0) {
    size_t used;
    h->body = NULL;
    used = execute(h, s->buf + s->start, lfdn_tcp_buffered(s));
    if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK)
      return parse_error(L, h);
    lua_pushboolean(L, 0);
    if (h->body != NULL)
      lua_pushlstring(L, h->body, h->body_len);
    else
      lua_pushnil(L);
    lfdn_tcp_consume(s, used);
    if (h->body != NULL)
      return 2;
    if (h->complete) {
      h->state = P_DONE;
      return 2;
    }
    lua_pop(L, 2);
    if (used == 0)
      break;
  }
  if (s->err != 0)
    return lfdn_tcp_push_error(L, s->err);
  if (s->eof) {
    /* A response without length ends with the connection. */
    execute(h, NULL, 0);
    if (h->complete && HTTP_PARSER_ERRNO(&h->p) == HPE_OK) {
      h->state = P_DONE;
      lua_pushboolean(L, 0);
      lua_pushnil(L);
      return 2;
    }
    return failed(L, h, "incomplete",
                  "the peer closed the connection in the middle of a body");
  }
  return lfdn_tcp_wait_readable(L, s, timeout, "http_read_body");
}

/* http_parser_state(parser) -> "head" | "body" | "done" | "failed" */
static int l_state(lua_State *L) {
  static const char *const names[] = {"head", "body", "done", "failed"};
  lhttp_t *h = check_parser(L, "http_parser_state");
  lua_pushstring(L, names[h->state]);
  return 1;
}

void lfdn_open_http(lua_State *L) {
  static const luaL_Reg funcs[] = {{"http_parser_new", l_new},
                                   {"http_read_head", l_read_head},
                                   {"http_read_body", l_read_body},
                                   {"http_parser_state", l_state},
                                   {NULL, NULL}};
  luaL_newmetatable(L, LFDN_HTTP_MT);
  lua_pushliteral(L, "fdn.http_parser");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lfdn_register(L, funcs);
  lua_pushinteger(L, HTTP_MAX_HEADER_SIZE);
  lua_setfield(L, -3, "HTTP_MAX_HEADER_SIZE");
}
