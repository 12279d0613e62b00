/* wsframe.h - the frames mdb-ws queues: reference-counted byte buffers
 * (an encoded WebSocket frame, or raw HTTP bytes) shared by every client
 * queue that holds them, and the pool the small ones come from.
 *
 * The pool is grown in chunks by wsframe_pool_reserve(), which the caller
 * runs outside its per-record path (before each batch of records); taking
 * a small frame never allocates: an empty pool answers NULL and the caller
 * conflates. The pool holds at most max_frames small frames, so memory
 * stays bounded whatever the clients do. Frames larger than the pool's
 * frame size (HTTP bodies) are malloc'd and freed one by one.
 */
#ifndef MDB_WSFRAME_H
#define MDB_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

struct wsframe {
	uint32_t refs;	      /* holders; the last wsframe_put() recycles it */
	uint32_t len;	      /* bytes in data */
	uint32_t cap;	      /* bytes data can hold */
	uint32_t pooled;      /* 1: belongs to the pool's chunks */
	struct wsframe *next; /* in the pool's free list */
	uint8_t data[];
};

typedef struct wsframe_pool wsframe_pool;

/* A pool of frames of frame_cap bytes, grown chunk frames at a time up to
 * max_frames (0 < chunk <= max_frames). Allocates nothing yet. NULL and
 * errno = ENOMEM or EINVAL on failure. Free with wsframe_pool_free(). */
wsframe_pool *wsframe_pool_new(size_t frame_cap, unsigned chunk, unsigned max_frames);

/* Free the pool and every chunk (frames still held become invalid); accepts
 * NULL and sets *p to NULL. */
void wsframe_pool_free(wsframe_pool **p);

/* Grow the pool by whole chunks until at least want frames are free or it
 * holds max_frames. Returns 0 when want are free, -ENOSPC at the bound,
 * -ENOMEM. The one place the pool allocates: call it outside the hot path. */
int wsframe_pool_reserve(wsframe_pool *p, unsigned want);

/* A frame for len bytes with refs 1: from the pool when len fits a pool
 * frame (NULL when the pool is empty: never allocates), else malloc'd
 * (NULL on ENOMEM). */
struct wsframe *wsframe_get(wsframe_pool *p, size_t len);

/* Drop one reference to f (NULL is ignored); the last returns a pool frame
 * to the pool and frees a malloc'd one. */
void wsframe_put(wsframe_pool *p, struct wsframe *f);

/* Free pool frames now, and pool frames in all (free or held). */
unsigned wsframe_pool_avail(const wsframe_pool *p);
unsigned wsframe_pool_total(const wsframe_pool *p);

/* The largest len wsframe_get() serves from the pool. */
size_t wsframe_pool_frame_cap(const wsframe_pool *p);

#endif
