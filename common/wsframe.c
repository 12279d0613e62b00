/* wsframe.c - shared frames and their chunked pool; see wsframe.h. */
#include "wsframe.h"

#include <errno.h>
#include <stdlib.h>

struct chunk {
	struct chunk *next;
	max_align_t align[]; /* the chunk's frames follow */
};

struct wsframe_pool {
	size_t frame_cap; /* data bytes of a pool frame */
	size_t stride;	  /* bytes from one pool frame to the next */
	unsigned chunk;	  /* frames per chunk */
	unsigned max;	  /* frames in all chunks, at most */
	unsigned total;	  /* frames in all chunks */
	unsigned avail;	  /* frames on the free list */
	struct wsframe *free_list;
	struct chunk *chunks;
};

wsframe_pool *wsframe_pool_new(size_t frame_cap, unsigned chunk, unsigned max_frames)
{
	if (frame_cap == 0 || frame_cap > UINT32_MAX / 2 || chunk == 0 || chunk > max_frames) {
		errno = EINVAL;
		return NULL;
	}
	wsframe_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	size_t a = _Alignof(struct wsframe);
	p->frame_cap = frame_cap;
	p->stride = (sizeof(struct wsframe) + frame_cap + a - 1) / a * a;
	p->chunk = chunk;
	p->max = max_frames;
	return p;
}

void wsframe_pool_free(wsframe_pool **pp)
{
	wsframe_pool *p = pp ? *pp : NULL;
	if (!p)
		return;
	for (struct chunk *c = p->chunks, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(p);
	*pp = NULL;
}

int wsframe_pool_reserve(wsframe_pool *p, unsigned want)
{
	while (p->avail < want) {
		if (p->total + p->chunk > p->max)
			return -ENOSPC;
		struct chunk *c = malloc(sizeof *c + (size_t)p->chunk * p->stride);
		if (!c)
			return -ENOMEM;
		c->next = p->chunks;
		p->chunks = c;
		uint8_t *base = (uint8_t *)c->align;
		for (unsigned i = 0; i < p->chunk; i++) {
			struct wsframe *f = (struct wsframe *)(base + (size_t)i * p->stride);
			f->cap = (uint32_t)p->frame_cap;
			f->pooled = 1;
			f->next = p->free_list;
			p->free_list = f;
		}
		p->total += p->chunk;
		p->avail += p->chunk;
	}
	return 0;
}

struct wsframe *wsframe_get(wsframe_pool *p, size_t len)
{
	struct wsframe *f;
	if (len <= p->frame_cap) {
		if (!(f = p->free_list))
			return NULL;
		p->free_list = f->next;
		p->avail--;
	} else {
		if (len > UINT32_MAX || !(f = malloc(sizeof *f + len)))
			return NULL;
		f->cap = (uint32_t)len;
		f->pooled = 0;
	}
	f->refs = 1;
	f->len = (uint32_t)len;
	f->next = NULL;
	return f;
}

void wsframe_put(wsframe_pool *p, struct wsframe *f)
{
	if (!f || --f->refs)
		return;
	if (f->pooled) {
		f->next = p->free_list;
		p->free_list = f;
		p->avail++;
	} else {
		free(f);
	}
}

unsigned wsframe_pool_avail(const wsframe_pool *p)
{
	return p->avail;
}

unsigned wsframe_pool_total(const wsframe_pool *p)
{
	return p->total;
}

size_t wsframe_pool_frame_cap(const wsframe_pool *p)
{
	return p->frame_cap;
}
