/* Embedding fdn in a host program: an engine and a Lua state on the host's
 * libuv loop (or one of its own), scripts loaded into it, Lua functions
 * started as tasks with a C callback when they finish.
 *
 * Everything runs on the loop's thread. The host keeps running its loop as
 * usual; fdn's tasks run between the host's own callbacks.
 */
#ifndef FDN_LUA_H
#define FDN_LUA_H

#include <lua.h>
#include <uv.h>

#include "fdn/fdn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fdn_lua_s fdn_lua_t;

typedef struct fdn_lua_options_s {
  uv_loop_t *loop;        /* borrowed; NULL: fdn creates and owns one */
  fdn_clock_kind_t clock; /* FDN_CLOCK_REAL by default */
} fdn_lua_options_t;

/* Called when a task started by fdn_lua_call() finishes. On success `ok`
 * is 1 and the function's `nresults` results are on top of `L`; on failure
 * `ok` is 0 and the error value is on top (nresults == 1). The values are
 * valid during the callback only.
 */
typedef void (*fdn_lua_done_cb)(fdn_lua_t *h, void *data, int ok, lua_State *L,
                                int nresults);

/* Creates a Lua state with the standard libraries and fdn preloaded
 * (`require "fdn"` works; the global `fdn` is set) and binds an engine to
 * it. `opts` may be NULL. The caller closes it with fdn_lua_close().
 */
int fdn_lua_new(fdn_lua_t **out, const fdn_lua_options_t *opts);

lua_State *fdn_lua_state(fdn_lua_t *h);
uv_loop_t *fdn_lua_loop(fdn_lua_t *h);
fdn_engine_t *fdn_lua_engine(fdn_lua_t *h);

/* Runs a chunk now, outside any task (for definitions; a suspending call
 * in it raises). Returns 0, or FDN_EINVAL with the message available from
 * fdn_lua_last_error().
 */
int fdn_lua_dofile(fdn_lua_t *h, const char *path);
int fdn_lua_dostring(fdn_lua_t *h, const char *code, const char *chunkname);

/* Starts the global function `name` as a task, with the top `nargs` values
 * of fdn_lua_state(h) as arguments (popped). `cb` may be NULL: a failure is
 * then reported like any unjoined task's. Returns 0 or FDN_EINVAL (no such
 * function; the arguments are popped all the same), FDN_ECLOSED.
 */
int fdn_lua_call(fdn_lua_t *h, const char *name, int nargs, fdn_lua_done_cb cb,
                 void *data);

/* Runs a loop fdn owns until no task is left. Hosts with their own loop
 * run it themselves instead.
 */
int fdn_lua_run(fdn_lua_t *h);

/* Message of the last failed fdn_lua_* call, or NULL. */
const char *fdn_lua_last_error(fdn_lua_t *h);

/* Cancels what is left, gives cancelled tasks a few turns to clean up,
 * abandons the rest (their callbacks run with ok == 0), closes the Lua state
 * and frees everything. No callback runs after it returns. On a borrowed
 * loop the engine's two handles finish closing on the host's next loop turn.
 */
void fdn_lua_close(fdn_lua_t *h);

/* Makes `require "fdn"` and its submodules resolve to the copies compiled
 * into libfdn, in any Lua state.
 */
void fdn_lua_preload(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
