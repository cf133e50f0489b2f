/* Whether an engine owns its loop: bindings that leave work in libuv's
 * thread pool must drain it before an engine frees a loop it owns.
 */
#include "ctask.h"
#include "test.h"

TEST_IMPL(engine_owns_only_a_loop_it_made) {
  uv_loop_t loop;
  fdn_engine_options_t opts;
  fdn_engine_t *engine = ctest_engine(FDN_CLOCK_REAL);
  ASSERT(fdn_engine_owns_loop(engine));
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fdn_engine_options_init(&opts);
  opts.loop = &loop;
  ASSERT_EQ(fdn_engine_new(&engine, &opts), 0);
  ASSERT(!fdn_engine_owns_loop(engine));
  ASSERT_EQ(fdn_engine_close(engine, NULL, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_EQ(uv_loop_close(&loop), 0);
  return 0;
}
