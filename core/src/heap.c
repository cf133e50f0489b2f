#include "fdn/heap.h"

#include <stdlib.h>

#include "fdn/error.h"

#define ARITY 4u

static int entry_less(const fdn_heap_entry_t *a, const fdn_heap_entry_t *b) {
  if (a->key != b->key)
    return a->key < b->key;
  return a->seq < b->seq;
}

static void place(fdn_heap_t *heap, uint32_t i, const fdn_heap_entry_t *e) {
  heap->entries[i] = *e;
  e->node->index = i;
}

static void sift_up(fdn_heap_t *heap, uint32_t i, fdn_heap_entry_t e) {
  while (i > 0) {
    uint32_t parent = (i - 1) / ARITY;
    if (!entry_less(&e, &heap->entries[parent]))
      break;
    place(heap, i, &heap->entries[parent]);
    i = parent;
  }
  place(heap, i, &e);
}

static void sift_down(fdn_heap_t *heap, uint32_t i, fdn_heap_entry_t e) {
  for (;;) {
    uint32_t first = ARITY * i + 1, best, c, end;
    if (first >= heap->len)
      break;
    end = first + ARITY < heap->len ? first + ARITY : heap->len;
    best = first;
    for (c = first + 1; c < end; c++)
      if (entry_less(&heap->entries[c], &heap->entries[best]))
        best = c;
    if (!entry_less(&heap->entries[best], &e))
      break;
    place(heap, i, &heap->entries[best]);
    i = best;
  }
  place(heap, i, &e);
}

void fdn_heap_init(fdn_heap_t *heap) {
  heap->entries = NULL;
  heap->len = 0;
  heap->cap = 0;
  heap->next_seq = 0;
}

void fdn_heap_free(fdn_heap_t *heap) {
  uint32_t i;
  for (i = 0; i < heap->len; i++)
    heap->entries[i].node->index = FDN_HEAP_NONE;
  free(heap->entries);
  fdn_heap_init(heap);
}

void fdn_heap_node_init(fdn_heap_node_t *node, uint32_t tag) {
  node->index = FDN_HEAP_NONE;
  node->tag = tag;
}

int fdn_heap_push(fdn_heap_t *heap, fdn_heap_node_t *node, uint64_t key) {
  fdn_heap_entry_t e;
  if (node->index != FDN_HEAP_NONE)
    return FDN_ESTATE;
  if (heap->len == heap->cap) {
    uint32_t cap = heap->cap ? heap->cap * 2 : 64;
    fdn_heap_entry_t *entries;
    if (cap <= heap->cap || cap >= FDN_HEAP_NONE)
      return FDN_ENOMEM;
    entries = realloc(heap->entries, (size_t)cap * sizeof(*entries));
    if (entries == NULL)
      return FDN_ENOMEM;
    heap->entries = entries;
    heap->cap = cap;
  }
  e.key = key;
  e.seq = heap->next_seq++;
  e.node = node;
  sift_up(heap, heap->len++, e);
  return 0;
}

fdn_heap_node_t *fdn_heap_peek(const fdn_heap_t *heap) {
  return heap->len ? heap->entries[0].node : NULL;
}

void fdn_heap_remove(fdn_heap_t *heap, fdn_heap_node_t *node) {
  uint32_t i = node->index;
  fdn_heap_entry_t last;
  if (i == FDN_HEAP_NONE || i >= heap->len || heap->entries[i].node != node)
    return;
  node->index = FDN_HEAP_NONE;
  last = heap->entries[--heap->len];
  if (i == heap->len)
    return;
  if (i > 0 && entry_less(&last, &heap->entries[(i - 1) / ARITY]))
    sift_up(heap, i, last);
  else
    sift_down(heap, i, last);
}

fdn_heap_node_t *fdn_heap_pop(fdn_heap_t *heap) {
  fdn_heap_node_t *top = fdn_heap_peek(heap);
  if (top != NULL)
    fdn_heap_remove(heap, top);
  return top;
}
