/* The logger's hot formatting paths, in C: UTF-8 repair and the JSON line
 * encoder for flat log records.
 *
 * lua-cjson copies invalid UTF-8 into its output unchanged (the line is
 * then unparsable for strict readers) and formats each number with
 * snprintf at several hundred ns, so a record's scalar fields are encoded
 * here; nested tables and other non-scalar values are handed to a Lua
 * function (fdn/log.lua sanitizes them and encodes them with lua-cjson).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lfdn.h"

/* Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes
 * there are not one (overlong forms, surrogates and code points above
 * U+10FFFF are rejected, as RFC 3629 requires).
 */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len) {
  unsigned char c = s[i];
  size_t n, k;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if (len - i < n)
    return 0;
  if (s[i + 1] < lo || s[i + 1] > hi)
    return 0;
  for (k = 2; k < n; k++)
    if (s[i + k] < 0x80 || s[i + k] > 0xBF)
      return 0;
  return n;
}

/* utf8_clean(s) -> s itself when it is valid UTF-8; otherwise a copy with
 * each invalid byte replaced by U+FFFD. Non-strings are returned as given.
 */
static int l_utf8_clean(lua_State *L) {
  size_t len, i = 0, n;
  const unsigned char *s;
  luaL_Buffer b;
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_settop(L, 1);
    return 1;
  }
  s = (const unsigned char *)lua_tolstring(L, 1, &len);
  while (i < len && (n = utf8_seq(s, i, len)) != 0)
    i += n;
  if (i == len) {
    lua_settop(L, 1);
    return 1;
  }
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)s, i);
  while (i < len) {
    n = utf8_seq(s, i, len);
    if (n == 0) {
      luaL_addlstring(&b, "\xEF\xBF\xBD", 3);
      i++;
    } else {
      luaL_addlstring(&b, (const char *)s + i, n);
      i += n;
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* The output buffer: a local array first, then a userdata kept at stack
 * slot `idx` (so an error anywhere frees it with the GC, never leaks).
 */
typedef struct {
  char *p;
  size_t len;
  size_t cap;
  int idx;
  char local[512];
} jbuf_t;

static void jb_grow(lua_State *L, jbuf_t *b, size_t n) {
  size_t cap = b->cap * 2;
  char *grown;
  while (cap - b->len < n)
    cap *= 2;
  grown = lua_newuserdata(L, cap);
  memcpy(grown, b->p, b->len);
  lua_replace(L, b->idx);
  b->p = grown;
  b->cap = cap;
}

#define jb_reserve(L, b, n)                                                    \
  do {                                                                         \
    if ((b)->cap - (b)->len < (n))                                             \
      jb_grow(L, b, n);                                                        \
  } while (0)

static void jb_add(lua_State *L, jbuf_t *b, const char *s, size_t n) {
  jb_reserve(L, b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

#define jb_lit(L, b, s) jb_add(L, b, s, sizeof(s) - 1)

#define jb_char(L, b, c)                                                       \
  do {                                                                         \
    jb_reserve(L, b, 1);                                                       \
    (b)->p[(b)->len++] = (c);                                                  \
  } while (0)

/* Bytes copied into a JSON string as they are: printable ASCII other than
 * the quote and the backslash.
 */
/* clang-format off */
#define P16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
#define Z16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char plain_char[256] = {
  Z16, Z16,                                         /* controls */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x22 '"' */
  P16, P16,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* 0x5c '\\' */
  P16, P16,
  Z16, Z16, Z16, Z16, Z16, Z16, Z16, Z16            /* not ASCII */
};
#undef P16
#undef Z16
/* clang-format on */

/* A JSON string: escapes, and U+FFFD for each byte of invalid UTF-8. */
static void jb_string(lua_State *L, jbuf_t *b, const char *str, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run = 0, n;
  jb_reserve(L, b, len + 2);
  b->p[b->len++] = '"';
  while (i < len) {
    unsigned char c = s[i];
    if (plain_char[c]) {
      i++;
      continue;
    }
    if (c >= 0x80 && (n = utf8_seq(s, i, len)) != 0) {
      i += n;
      continue;
    }
    jb_add(L, b, str + run, i - run);
    switch (c) {
    case '"':
      jb_lit(L, b, "\\\"");
      break;
    case '\\':
      jb_lit(L, b, "\\\\");
      break;
    case '\n':
      jb_lit(L, b, "\\n");
      break;
    case '\r':
      jb_lit(L, b, "\\r");
      break;
    case '\t':
      jb_lit(L, b, "\\t");
      break;
    default:
      if (c < 0x20) {
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        jb_add(L, b, esc, 6);
      } else {
        jb_lit(L, b, "\xEF\xBF\xBD");
      }
    }
    i++;
    run = i;
  }
  jb_add(L, b, str + run, len - run);
  jb_char(L, b, '"');
}

/* Writes the decimal digits of u ending at `end`; returns the start. */
static char *put_digits(char *end, unsigned long long u) {
  do {
    *--end = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  return end;
}

static const double pow10_table[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                     1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                     1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20};

/* %.14g for 1e-5 <= |v| < 1e15 without printf, whose exact conversion
 * costs thousands of instructions per number: the 14 significant digits
 * are rounded from one scaling by a power of ten (at most one rounding
 * step off the exact digits, which a log line does not need). Returns the
 * length written to out (at least 40 bytes), or 0 outside that range.
 */
static int format_g14(char *out, double v) {
  double a = fabs(v), scaled;
  unsigned long long m;
  char digits[20], *d, *o = out;
  int e, k, ndig, point;
  if (!(a >= 1e-5 && a < 1e15))
    return 0;
  e = (int)floor(log10(a));
  k = 13 - e; /* -1 .. 18 */
  scaled = k >= 0 ? a * pow10_table[k] : a / pow10_table[-k];
  m = (unsigned long long)(scaled + 0.5);
  if (m >= 100000000000000ull) { /* log10 rounded up, or 9.99..95 -> 10 */
    m = (m + 5) / 10;
    e++;
  } else if (m < 10000000000000ull) { /* log10 rounded down */
    e--;
    k = 13 - e;
    scaled = k >= 0 ? a * pow10_table[k] : a / pow10_table[-k];
    m = (unsigned long long)(scaled + 0.5);
  }
  d = put_digits(digits + sizeof(digits), m);
  ndig = (int)(digits + sizeof(digits) - d);
  while (ndig > 1 && d[ndig - 1] == '0')
    ndig--;
  if (v < 0)
    *o++ = '-';
  point = e + 1; /* digits before the decimal point */
  if (point <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (k = 0; k < -point; k++)
      *o++ = '0';
    memcpy(o, d, (size_t)ndig);
    o += ndig;
  } else if (point >= ndig) {
    memcpy(o, d, (size_t)ndig);
    o += ndig;
    for (k = ndig; k < point; k++)
      *o++ = '0';
  } else {
    memcpy(o, d, (size_t)point);
    o += point;
    *o++ = '.';
    memcpy(o, d + point, (size_t)(ndig - point));
    o += ndig - point;
  }
  return (int)(o - out);
}

/* Numbers as lua-cjson writes them (integers whole, others with 14
 * significant digits); NaN and infinities, which JSON lacks, as strings.
 */
static void jb_number(lua_State *L, jbuf_t *b, lua_Number v, int quoted) {
  char tmp[48], *p;
  int n;
  if (v != v) {
    jb_lit(L, b, "\"nan\"");
    return;
  }
  if (isinf(v)) {
    if (v > 0)
      jb_lit(L, b, "\"inf\"");
    else
      jb_lit(L, b, "\"-inf\"");
    return;
  }
  p = tmp + 1;
  if (v == floor(v) && fabs(v) < 1e15) {
    long long iv = (long long)v;
    char *end = tmp + sizeof(tmp) - 1;
    char *start = put_digits(end, iv < 0 ? 0ull - (unsigned long long)iv
                                         : (unsigned long long)iv);
    if (iv < 0)
      *--start = '-';
    n = (int)(end - start);
    memmove(p, start, (size_t)n);
  } else if ((n = format_g14(p, (double)v)) == 0) {
    n = snprintf(p, sizeof(tmp) - 2, "%.14g", (double)v);
  }
  if (quoted) {
    tmp[0] = '"';
    p[n] = '"';
    jb_add(L, b, tmp, (size_t)n + 2);
  } else {
    jb_add(L, b, p, (size_t)n);
  }
}

/* Unix seconds with exactly six decimals (microseconds). */
static void jb_time(lua_State *L, jbuf_t *b, double t) {
  char tmp[48], *end = tmp + sizeof(tmp), *p = end;
  double a = fabs(t), whole = floor(a);
  long long us = (long long)((a - whole) * 1e6 + 0.5);
  int i;
  if (!(a < 1e15)) {
    jb_number(L, b, t, 0);
    return;
  }
  if (us >= 1000000) {
    us -= 1000000;
    whole += 1;
  }
  for (i = 0; i < 6; i++) {
    *--p = (char)('0' + us % 10);
    us /= 10;
  }
  *--p = '.';
  p = put_digits(p, (unsigned long long)whole);
  if (t < 0)
    *--p = '-';
  jb_add(L, b, p, (size_t)(end - p));
}

/* Appends the value at `idx`; non-scalars go through the render function
 * at stack slot 2, which returns their JSON text.
 */
static void jb_value(lua_State *L, jbuf_t *b, int idx) {
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    jb_string(L, b, s, len);
    return;
  case LUA_TNUMBER:
    jb_number(L, b, lua_tonumber(L, idx), 0);
    return;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      jb_lit(L, b, "true");
    else
      jb_lit(L, b, "false");
    return;
  case LUA_TNIL:
    jb_lit(L, b, "null");
    return;
  default:
    lua_pushvalue(L, 2);
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    s = lua_tolstring(L, -1, &len);
    if (s != NULL && len > 0)
      jb_add(L, b, s, len);
    else
      jb_lit(L, b, "null");
    lua_pop(L, 1);
  }
}

/* Object keys are always strings: numbers are quoted, other types named. */
static void jb_key(lua_State *L, jbuf_t *b, int idx) {
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    s = lua_tolstring(L, idx, &len);
    jb_string(L, b, s, len);
    break;
  case LUA_TNUMBER:
    jb_number(L, b, lua_tonumber(L, idx), 1);
    break;
  default:
    jb_char(L, b, '"');
    jb_char(L, b, '<');
    s = luaL_typename(L, idx);
    jb_add(L, b, s, strlen(s));
    jb_char(L, b, '>');
    jb_char(L, b, '"');
  }
}

/* Bytes a console value may show bare, without quotes: letters, digits
 * and . - _ : / @ + , % # [ ] ( ).
 */
static int bare_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || strchr(".-_:/@+,%#[]()", c) != NULL;
}

/* console_str(s) -> s as a console key=value line shows it: bare when it
 * is non-empty and made of bare characters (and valid UTF-8 text), else
 * in double quotes with \" \\ \n \r \t and \xNN escapes. Invalid UTF-8
 * becomes U+FFFD either way.
 */
static int l_console_str(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  size_t len, i = 0, n;
  const unsigned char *s;
  int bare = 1, valid = 1;
  luaL_Buffer b;
  if (lua_type(L, 1) != LUA_TSTRING)
    return lfdn_argerror(L, "console_str", "s", "a string", 1);
  s = (const unsigned char *)lua_tolstring(L, 1, &len);
  if (len == 0)
    bare = 0;
  while (i < len) {
    if (s[i] < 0x80) {
      if (bare && (s[i] == 0 || !bare_char(s[i])))
        bare = 0;
      i++;
    } else if ((n = utf8_seq(s, i, len)) != 0) {
      i += n;
    } else {
      valid = 0;
      i++;
    }
  }
  if (bare && valid) {
    lua_settop(L, 1);
    return 1;
  }
  luaL_buffinit(L, &b);
  if (!bare)
    luaL_addchar(&b, '"');
  for (i = 0; i < len;) {
    unsigned char c = s[i];
    if (c >= 0x80) {
      n = utf8_seq(s, i, len);
      if (n == 0) {
        luaL_addlstring(&b, "\xEF\xBF\xBD", 3);
        i++;
      } else {
        luaL_addlstring(&b, (const char *)s + i, n);
        i += n;
      }
      continue;
    }
    i++;
    if (bare || (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')) {
      luaL_addchar(&b, (char)c);
    } else if (c == '"' || c == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)c);
    } else if (c == '\n') {
      luaL_addlstring(&b, "\\n", 2);
    } else if (c == '\r') {
      luaL_addlstring(&b, "\\r", 2);
    } else if (c == '\t') {
      luaL_addlstring(&b, "\\t", 2);
    } else {
      char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
      luaL_addlstring(&b, esc, 4);
    }
  }
  if (!bare)
    luaL_addchar(&b, '"');
  luaL_pushresult(&b);
  return 1;
}

static const char *const head_keys[] = {"time", "level", "event", "logger"};

static int is_head_key(lua_State *L, int idx) {
  size_t len, i;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING)
    return 0;
  s = lua_tolstring(L, idx, &len);
  if (len < 4 || len > 6 || (s[0] != 't' && s[0] != 'l' && s[0] != 'e'))
    return 0;
  for (i = 0; i < 4; i++)
    if (strlen(head_keys[i]) == len && memcmp(s, head_keys[i], len) == 0)
      return 1;
  return 0;
}

/* log_json(record, render[, newline]) -> one JSON object: time, level,
 * event and logger first, then the other fields in table order. `render`
 * (value) -> JSON text is called for every value that is not a string,
 * number, boolean or nil.
 */
static int l_log_json(lua_State *L) {
  jbuf_t b;
  int first = 1, newline, top;
  size_t i;
  if (!lua_istable(L, 1))
    return lfdn_argerror(L, "log_json", "record", "a table", 1);
  if (!lua_isfunction(L, 2))
    return lfdn_argerror(L, "log_json", "render", "a function", 2);
  newline = lua_toboolean(L, 3);
  lua_settop(L, 3);
  lua_pushnil(L); /* slot 4: the grown buffer, if any */
  b.p = b.local;
  b.len = 0;
  b.cap = sizeof(b.local);
  b.idx = 4;
  jb_char(L, &b, '{');
  for (i = 0; i < 4; i++) {
    lua_pushvalue(L, lua_upvalueindex(2 + (int)i)); /* interned once */
    lua_rawget(L, 1);
    top = lua_gettop(L);
    if (!lua_isnil(L, top)) {
      if (!first)
        jb_char(L, &b, ',');
      first = 0;
      jb_char(L, &b, '"');
      jb_add(L, &b, head_keys[i], strlen(head_keys[i]));
      jb_lit(L, &b, "\":");
      if (i == 0 && lua_type(L, top) == LUA_TNUMBER &&
          isfinite(lua_tonumber(L, top))) {
        jb_time(L, &b, (double)lua_tonumber(L, top));
      } else {
        jb_value(L, &b, top);
      }
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    top = lua_gettop(L);
    if (!is_head_key(L, top - 1)) {
      if (!first)
        jb_char(L, &b, ',');
      first = 0;
      jb_key(L, &b, top - 1);
      jb_char(L, &b, ':');
      jb_value(L, &b, top);
    }
    lua_pop(L, 1);
  }
  jb_char(L, &b, '}');
  if (newline)
    jb_char(L, &b, '\n');
  lua_pushlstring(L, b.p, b.len);
  return 1;
}

void lfdn_open_logfmt(lua_State *L) {
  static const luaL_Reg funcs[] = {{"utf8_clean", l_utf8_clean},
                                   {"console_str", l_console_str},
                                   {NULL, NULL}};
  int state = lua_gettop(L), i;
  lfdn_register(L, funcs);
  lua_pushvalue(L, state);
  for (i = 0; i < 4; i++)
    lua_pushstring(L, head_keys[i]);
  lua_pushcclosure(L, l_log_json, 5);
  lua_setfield(L, state - 1, "log_json");
}
