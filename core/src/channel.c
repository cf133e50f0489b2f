#include "fdn/channel.h"

#include <stdlib.h>
#include <string.h>

#include "fdn/error.h"

/* The ring starts at this many slots and never shrinks below it. */
#define RING_MIN 8u
/* A ring larger than this shrinks by half once it is a quarter full. */
#define RING_SHRINK_ABOVE 64u

int fdn_channel_init(fdn_channel_t *ch, size_t maxsize) {
  if (ch == NULL || maxsize == 0)
    return FDN_EINVAL;
  ch->ring = NULL;
  ch->cap = 0;
  ch->head = 0;
  ch->len = 0;
  ch->maxsize = maxsize;
  fdn_waitq_init(&ch->getters);
  fdn_waitq_init(&ch->putters);
  ch->closed = 0;
  return 0;
}

void fdn_channel_destroy(fdn_channel_t *ch) {
  free(ch->ring);
  ch->ring = NULL;
  ch->cap = 0;
  ch->head = 0;
  ch->len = 0;
}

/* Moves the items into a ring of `cap` slots (cap >= len), oldest first. */
static int resize_ring(fdn_channel_t *ch, size_t cap) {
  intptr_t *ring;
  size_t first;
  if (cap > SIZE_MAX / sizeof(*ring))
    return FDN_ENOMEM;
  ring = malloc(cap * sizeof(*ring));
  if (ring == NULL)
    return FDN_ENOMEM;
  if (ch->len > 0) {
    first = ch->cap - ch->head < ch->len ? ch->cap - ch->head : ch->len;
    memcpy(ring, ch->ring + ch->head, first * sizeof(*ring));
    memcpy(ring + first, ch->ring, (ch->len - first) * sizeof(*ring));
  }
  free(ch->ring);
  ch->ring = ring;
  ch->cap = cap;
  ch->head = 0;
  return 0;
}

/* Appends an item; the caller checked that len < maxsize. */
static int push_tail(fdn_channel_t *ch, intptr_t item) {
  size_t tail;
  if (ch->len == ch->cap) {
    size_t cap = ch->cap < RING_MIN ? RING_MIN : ch->cap * 2;
    int rc;
    if (cap < ch->cap || cap > ch->maxsize)
      cap = ch->maxsize;
    if ((rc = resize_ring(ch, cap)) != 0)
      return rc;
  }
  tail = ch->head + ch->len;
  if (tail >= ch->cap)
    tail -= ch->cap;
  ch->ring[tail] = item;
  ch->len++;
  return 0;
}

static intptr_t pop_head(fdn_channel_t *ch) {
  intptr_t item = ch->ring[ch->head];
  if (++ch->head == ch->cap)
    ch->head = 0;
  ch->len--;
  if (ch->cap > RING_SHRINK_ABOVE && ch->len < ch->cap / 4)
    (void)resize_ring(ch, ch->cap / 2); /* a failed shrink keeps the ring */
  return item;
}

static int check_task(const fdn_task_t *task) {
  if (fdn_task_state(task) != FDN_TASK_RUNNING)
    return FDN_ESTATE;
  if (fdn_task_cancel_pending(task) != FDN_CANCEL_NONE)
    return FDN_ECANCELED;
  return 0;
}

/* Puts without parking: 1 when done, FDN_EAGAIN when full. */
static int put_now(fdn_channel_t *ch, intptr_t item) {
  fdn_task_t *getter = fdn_waitq_first(&ch->getters);
  int rc;
  if (getter != NULL) {
    /* Getters only wait on an empty ring: hand the item over directly. */
    getter->handoff = item;
    fdn_task_wake(getter, 0);
    return 1;
  }
  if (ch->len >= ch->maxsize)
    return FDN_EAGAIN;
  if ((rc = push_tail(ch, item)) != 0)
    return rc;
  return 1;
}

/* Gets without parking: 1 with *item set, FDN_EAGAIN when empty. */
static int get_now(fdn_channel_t *ch, intptr_t *item) {
  fdn_task_t *putter = fdn_waitq_first(&ch->putters);
  if (ch->len == 0) {
    if (putter == NULL)
      return FDN_EAGAIN;
    *item = putter->handoff;
    fdn_task_wake(putter, 0);
    return 1;
  }
  *item = pop_head(ch);
  if (putter != NULL && push_tail(ch, putter->handoff) == 0)
    fdn_task_wake(putter, 0);
  return 1;
}

int fdn_channel_put(fdn_channel_t *ch, fdn_task_t *task, intptr_t item,
                    uint64_t timeout_ns) {
  int rc;
  if (ch->closed)
    return FDN_ECLOSED;
  if (task != NULL && (rc = check_task(task)) != 0)
    return rc;
  rc = put_now(ch, item);
  if (rc != FDN_EAGAIN)
    return rc;
  if (task == NULL)
    return FDN_EAGAIN;
  if (timeout_ns == 0)
    return FDN_ETIMEDOUT;
  rc = fdn_task_wait(task, &ch->putters, timeout_ns);
  if (rc == 0)
    task->handoff = item;
  return rc;
}

int fdn_channel_get(fdn_channel_t *ch, fdn_task_t *task, intptr_t *item,
                    uint64_t timeout_ns) {
  int rc;
  if (task != NULL && (rc = check_task(task)) != 0)
    return rc;
  rc = get_now(ch, item);
  if (rc != FDN_EAGAIN)
    return rc;
  if (ch->closed)
    return FDN_ECLOSED;
  if (task == NULL)
    return FDN_EAGAIN;
  if (timeout_ns == 0)
    return FDN_ETIMEDOUT;
  return fdn_task_wait(task, &ch->getters, timeout_ns);
}

int fdn_channel_try_put(fdn_channel_t *ch, intptr_t item) {
  int rc;
  if (ch->closed)
    return FDN_ECLOSED;
  rc = put_now(ch, item);
  return rc == 1 ? 0 : rc;
}

int fdn_channel_try_get(fdn_channel_t *ch, intptr_t *item) {
  int rc = get_now(ch, item);
  if (rc == FDN_EAGAIN && ch->closed)
    return FDN_ECLOSED;
  return rc == 1 ? 0 : rc;
}

void fdn_channel_close(fdn_channel_t *ch) {
  if (ch->closed)
    return;
  ch->closed = 1;
  fdn_waitq_wake_all(&ch->putters, FDN_ECLOSED);
  fdn_waitq_wake_all(&ch->getters, FDN_ECLOSED);
}
