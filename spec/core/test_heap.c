#include <stdlib.h>

#include "fdn/fdn.h"
#include "test.h"

TEST_IMPL(heap_pops_in_key_order) {
  fdn_heap_t heap;
  fdn_heap_node_t nodes[5];
  uint64_t keys[5] = {50, 10, 40, 20, 30};
  int i;
  fdn_heap_init(&heap);
  for (i = 0; i < 5; i++) {
    fdn_heap_node_init(&nodes[i], 0);
    ASSERT_EQ(fdn_heap_push(&heap, &nodes[i], keys[i]), 0);
  }
  ASSERT_EQ(fdn_heap_len(&heap), 5);
  for (i = 1; i <= 5; i++) {
    fdn_heap_node_t *top;
    ASSERT(fdn_heap_top(&heap) != NULL);
    ASSERT_EQ(fdn_heap_top(&heap)->key, (uint64_t)(i * 10));
    top = fdn_heap_pop(&heap);
    ASSERT(top != NULL);
    ASSERT(!fdn_heap_node_active(top));
  }
  ASSERT(fdn_heap_pop(&heap) == NULL);
  fdn_heap_free(&heap);
  return 0;
}

TEST_IMPL(heap_equal_keys_pop_in_insertion_order) {
  fdn_heap_t heap;
  fdn_heap_node_t nodes[100];
  int i;
  fdn_heap_init(&heap);
  for (i = 0; i < 100; i++) {
    fdn_heap_node_init(&nodes[i], 0);
    ASSERT_EQ(fdn_heap_push(&heap, &nodes[i], 7), 0);
  }
  for (i = 0; i < 100; i++)
    ASSERT(fdn_heap_pop(&heap) == &nodes[i]);
  fdn_heap_free(&heap);
  return 0;
}

TEST_IMPL(heap_push_of_queued_node_fails) {
  fdn_heap_t heap;
  fdn_heap_node_t node;
  fdn_heap_init(&heap);
  fdn_heap_node_init(&node, 0);
  ASSERT_EQ(fdn_heap_push(&heap, &node, 1), 0);
  ASSERT_EQ(fdn_heap_push(&heap, &node, 2), FDN_ESTATE);
  ASSERT_EQ(fdn_heap_len(&heap), 1);
  fdn_heap_free(&heap);
  ASSERT(!fdn_heap_node_active(&node));
  return 0;
}

TEST_IMPL(heap_remove_of_absent_node_is_ignored) {
  fdn_heap_t heap;
  fdn_heap_node_t a, b;
  fdn_heap_init(&heap);
  fdn_heap_node_init(&a, 0);
  fdn_heap_node_init(&b, 0);
  ASSERT_EQ(fdn_heap_push(&heap, &a, 1), 0);
  fdn_heap_remove(&heap, &b);
  ASSERT_EQ(fdn_heap_len(&heap), 1);
  fdn_heap_remove(&heap, &a);
  fdn_heap_remove(&heap, &a);
  ASSERT_EQ(fdn_heap_len(&heap), 0);
  fdn_heap_free(&heap);
  return 0;
}

/* Random pushes and removals against a brute-force model: whatever is
 * left must come out sorted by (key, insertion order).
 */
TEST_IMPL(heap_random_removals_keep_order) {
  enum { N = 5000 };
  static fdn_heap_node_t nodes[N];
  static int present[N];
  fdn_heap_t heap;
  unsigned seed = 12345;
  int i, remaining = 0;
  uint64_t last_key = 0, last_seq = 0;
  fdn_heap_init(&heap);
  for (i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    fdn_heap_node_init(&nodes[i], 0);
    ASSERT_EQ(fdn_heap_push(&heap, &nodes[i], (seed >> 16) % 500), 0);
    present[i] = 1;
  }
  for (i = 0; i < N; i += 3) {
    fdn_heap_remove(&heap, &nodes[i]);
    present[i] = 0;
  }
  for (i = 0; i < N; i++)
    remaining += present[i];
  ASSERT_EQ(fdn_heap_len(&heap), remaining);
  for (i = 0; i < remaining; i++) {
    const fdn_heap_entry_t *e = fdn_heap_top(&heap);
    uint64_t key, seq;
    fdn_heap_node_t *top;
    ASSERT(e != NULL);
    key = e->key;
    seq = e->seq;
    top = fdn_heap_pop(&heap);
    ASSERT(top != NULL);
    ASSERT(present[top - nodes]);
    if (i > 0)
      ASSERT(key > last_key || (key == last_key && seq > last_seq));
    last_key = key;
    last_seq = seq;
  }
  ASSERT(fdn_heap_peek(&heap) == NULL);
  fdn_heap_free(&heap);
  return 0;
}
