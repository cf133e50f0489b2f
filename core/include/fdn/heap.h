/* Min-heap of intrusive nodes, ordered by (key, seq).
 *
 * The heap stores each node's key and sequence number inline in one
 * contiguous array, so sifting compares array entries and never touches
 * the nodes themselves (which live scattered in task records); a node only
 * learns its new position when it moves. It is 4-ary: half the levels of a
 * binary heap, and the four children of an entry share cache lines. The
 * position recorded in each node makes removing an arbitrary node
 * O(log n). The sequence number breaks ties between equal keys in
 * insertion order, which keeps timer firing deterministic.
 */
#ifndef FDN_HEAP_H
#define FDN_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define FDN_HEAP_NONE UINT32_MAX

/* Embedded in whatever the heap orders (a task, a timer); 8 bytes, since
 * key and sequence live in the heap's own array.
 */
typedef struct fdn_heap_node_s {
  uint32_t index; /* position in the heap, FDN_HEAP_NONE when absent */
  uint32_t tag;   /* owner's type tag; the heap never reads it */
} fdn_heap_node_t;

typedef struct fdn_heap_entry_s {
  uint64_t key;
  uint64_t seq;
  fdn_heap_node_t *node;
} fdn_heap_entry_t;

typedef struct fdn_heap_s {
  fdn_heap_entry_t *entries;
  uint32_t len;
  uint32_t cap;
  uint64_t next_seq;
} fdn_heap_t;

void fdn_heap_init(fdn_heap_t *heap);

/* Frees the heap's array. Nodes are the caller's and are left untouched
 * but for being marked absent.
 */
void fdn_heap_free(fdn_heap_t *heap);

/* Marks a node as absent from any heap. */
void fdn_heap_node_init(fdn_heap_node_t *node, uint32_t tag);

/* Inserts a node that is not in a heap. The heap borrows the node until it
 * is popped or removed. Returns 0, FDN_ENOMEM, or FDN_ESTATE when the node
 * is already in a heap.
 */
int fdn_heap_push(fdn_heap_t *heap, fdn_heap_node_t *node, uint64_t key);

fdn_heap_node_t *fdn_heap_peek(const fdn_heap_t *heap);

/* The smallest entry (its key, seq and node), or NULL when empty. */
static inline const fdn_heap_entry_t *fdn_heap_top(const fdn_heap_t *heap) {
  return heap->len ? &heap->entries[0] : NULL;
}
fdn_heap_node_t *fdn_heap_pop(fdn_heap_t *heap);

/* Removes a node from the heap; a node not in the heap is ignored. */
void fdn_heap_remove(fdn_heap_t *heap, fdn_heap_node_t *node);

static inline int fdn_heap_node_active(const fdn_heap_node_t *node) {
  return node->index != FDN_HEAP_NONE;
}

static inline uint32_t fdn_heap_len(const fdn_heap_t *heap) {
  return heap->len;
}

#endif
