/* Runs one test by name (as ctest does), or every test when given none. */
#include <stdio.h>
#include <string.h>

#include "test.h"

#define FDN_TEST(name) TEST_IMPL(name);
#include "test_list.h"
#undef FDN_TEST

typedef struct {
  const char *name;
  int (*fn)(void);
} test_entry_t;

static const test_entry_t tests[] = {
#define FDN_TEST(name) {#name, fdn_test_##name},
#include "test_list.h"
#undef FDN_TEST
};

int main(int argc, char **argv) {
  size_t i, n = sizeof(tests) / sizeof(tests[0]);
  int failed = 0;
  if (argc > 1) {
    for (i = 0; i < n; i++)
      if (strcmp(tests[i].name, argv[1]) == 0)
        return tests[i].fn() ? 1 : 0;
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
  }
  for (i = 0; i < n; i++) {
    int rc = tests[i].fn();
    printf("%s %s\n", rc ? "not ok" : "ok", tests[i].name);
    failed += rc != 0;
  }
  printf("%zu passed, %d failed\n", n - (size_t)failed, failed);
  return failed ? 1 : 0;
}
