#include "fdn/heap.h"

#include <stdlib.h>

#include "fdn/error.h"

static int node_less(const fdn_heap_node_t *a, const fdn_heap_node_t *b) {
  if (a->key != b->key)
    return a->key < b->key;
  return a->seq < b->seq;
}

static void place(fdn_heap_t *heap, uint32_t i, fdn_heap_node_t *node) {
  heap->nodes[i] = node;
  node->index = i;
}

static void sift_up(fdn_heap_t *heap, uint32_t i) {
  fdn_heap_node_t *node = heap->nodes[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!node_less(node, heap->nodes[parent]))
      break;
    place(heap, i, heap->nodes[parent]);
    i = parent;
  }
  place(heap, i, node);
}

static void sift_down(fdn_heap_t *heap, uint32_t i) {
  fdn_heap_node_t *node = heap->nodes[i];
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= heap->len)
      break;
    if (child + 1 < heap->len &&
        node_less(heap->nodes[child + 1], heap->nodes[child]))
      child++;
    if (!node_less(heap->nodes[child], node))
      break;
    place(heap, i, heap->nodes[child]);
    i = child;
  }
  place(heap, i, node);
}

void fdn_heap_init(fdn_heap_t *heap) {
  heap->nodes = NULL;
  heap->len = 0;
  heap->cap = 0;
  heap->next_seq = 0;
}

void fdn_heap_free(fdn_heap_t *heap) {
  uint32_t i;
  for (i = 0; i < heap->len; i++)
    heap->nodes[i]->index = FDN_HEAP_NONE;
  free(heap->nodes);
  fdn_heap_init(heap);
}

void fdn_heap_node_init(fdn_heap_node_t *node, uint32_t tag) {
  node->key = 0;
  node->seq = 0;
  node->index = FDN_HEAP_NONE;
  node->tag = tag;
}

int fdn_heap_push(fdn_heap_t *heap, fdn_heap_node_t *node, uint64_t key) {
  if (node->index != FDN_HEAP_NONE)
    return FDN_ESTATE;
  if (heap->len == heap->cap) {
    uint32_t cap = heap->cap ? heap->cap * 2 : 64;
    fdn_heap_node_t **nodes;
    if (cap <= heap->cap || cap >= FDN_HEAP_NONE)
      return FDN_ENOMEM;
    nodes = realloc(heap->nodes, (size_t)cap * sizeof(*nodes));
    if (nodes == NULL)
      return FDN_ENOMEM;
    heap->nodes = nodes;
    heap->cap = cap;
  }
  node->key = key;
  node->seq = heap->next_seq++;
  heap->nodes[heap->len] = node;
  node->index = heap->len++;
  sift_up(heap, node->index);
  return 0;
}

fdn_heap_node_t *fdn_heap_peek(const fdn_heap_t *heap) {
  return heap->len ? heap->nodes[0] : NULL;
}

void fdn_heap_remove(fdn_heap_t *heap, fdn_heap_node_t *node) {
  uint32_t i = node->index;
  fdn_heap_node_t *last;
  if (i == FDN_HEAP_NONE || i >= heap->len || heap->nodes[i] != node)
    return;
  node->index = FDN_HEAP_NONE;
  last = heap->nodes[--heap->len];
  if (last == node)
    return;
  place(heap, i, last);
  if (i > 0 && node_less(last, heap->nodes[(i - 1) / 2]))
    sift_up(heap, i);
  else
    sift_down(heap, i);
}

fdn_heap_node_t *fdn_heap_pop(fdn_heap_t *heap) {
  fdn_heap_node_t *top = fdn_heap_peek(heap);
  if (top != NULL)
    fdn_heap_remove(heap, top);
  return top;
}
