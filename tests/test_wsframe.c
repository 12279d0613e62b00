/* test_wsframe.c - common/wsframe: the frame pool grows only in
 * wsframe_pool_reserve(), by whole chunks, up to its bound; taking and
 * returning pool frames allocates nothing, past the old 4096-frame mark
 * too; references keep a shared frame alive. */
#include <criterion/criterion.h>

#include "wsframe.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

Test(wsframe, bad_arguments)
{
	cr_assert_null(wsframe_pool_new(0, 16, 64));
	cr_assert_null(wsframe_pool_new(100, 0, 64));
	cr_assert_null(wsframe_pool_new(100, 128, 64));
	wsframe_pool_free(NULL);
}

Test(wsframe, grows_in_chunks_up_to_the_bound)
{
	wsframe_pool *p = wsframe_pool_new(1100, 1024, 8192);
	cr_assert_not_null(p);
	cr_assert_eq(wsframe_pool_total(p), 0);
	cr_assert_null(wsframe_get(p, 10), "an empty pool answers NULL, it does not allocate");
	cr_assert_eq(wsframe_pool_reserve(p, 1500), 0);
	cr_assert_eq(wsframe_pool_total(p), 2048, "two whole chunks");
	cr_assert_eq(wsframe_pool_avail(p), 2048);
	cr_assert_eq(wsframe_pool_reserve(p, 1000), 0);
	cr_assert_eq(wsframe_pool_total(p), 2048, "enough free: no growth");
	cr_assert_eq(wsframe_pool_reserve(p, 9000), -ENOSPC);
	cr_assert_eq(wsframe_pool_total(p), 8192, "grown to the bound, not past it");
	wsframe_pool_free(&p);
	cr_assert_null(p);
}

/* What malloc has handed out and not had back. */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

Test(wsframe, hot_path_allocates_nothing)
{
	enum { N = 20000 }; /* far past the old pool's 4096 frames */
	wsframe_pool *p = wsframe_pool_new(1100, 1024, 32768);
	static struct wsframe *held[N];
	cr_assert_eq(wsframe_pool_reserve(p, N), 0);
	size_t before = heap_in_use();
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			held[i] = wsframe_get(p, (size_t)(i % 1101));
			cr_assert_not_null(held[i], "frame %d of a reserved pool", i);
			cr_assert_eq(held[i]->refs, 1);
			cr_assert_geq(held[i]->cap, held[i]->len);
			memset(held[i]->data, round, held[i]->len);
		}
		cr_assert_eq(wsframe_pool_avail(p), wsframe_pool_total(p) - N);
		for (int i = 0; i < N; i++)
			wsframe_put(p, held[i]);
	}
	cr_assert_eq(heap_in_use(), before, "taking and returning pool frames allocated");
	cr_assert_eq(wsframe_pool_avail(p), wsframe_pool_total(p));
	wsframe_pool_free(&p);
}

Test(wsframe, dry_pool_refuses_then_recovers)
{
	wsframe_pool *p = wsframe_pool_new(64, 4, 8);
	cr_assert_eq(wsframe_pool_reserve(p, 8), 0);
	struct wsframe *f[8];
	for (int i = 0; i < 8; i++)
		cr_assert_not_null(f[i] = wsframe_get(p, 64));
	cr_assert_null(wsframe_get(p, 1), "dry at the bound");
	cr_assert_eq(wsframe_pool_reserve(p, 1), -ENOSPC);
	wsframe_put(p, f[3]);
	cr_assert_not_null(f[3] = wsframe_get(p, 1), "a returned frame is reused");
	for (int i = 0; i < 8; i++)
		wsframe_put(p, f[i]);
	cr_assert_eq(wsframe_pool_avail(p), 8);
	wsframe_pool_free(&p);
}

Test(wsframe, shared_frame_lives_until_the_last_put)
{
	wsframe_pool *p = wsframe_pool_new(64, 4, 4);
	cr_assert_eq(wsframe_pool_reserve(p, 4), 0);
	struct wsframe *f = wsframe_get(p, 5);
	memcpy(f->data, "hello", 5);
	f->refs += 2; /* two queues hold it as well */
	wsframe_put(p, f);
	wsframe_put(p, f);
	cr_assert_eq(wsframe_pool_avail(p), 3, "still held once");
	cr_assert_eq(memcmp(f->data, "hello", 5), 0);
	wsframe_put(p, f);
	cr_assert_eq(wsframe_pool_avail(p), 4);
	wsframe_pool_free(&p);
}

Test(wsframe, large_frames_are_malloced_and_freed)
{
	wsframe_pool *p = wsframe_pool_new(64, 4, 4);
	struct wsframe *f = wsframe_get(p, 100000);
	cr_assert_not_null(f, "an HTTP body larger than a pool frame");
	cr_assert_eq(f->len, 100000);
	memset(f->data, 1, f->len);
	cr_assert_eq(wsframe_pool_total(p), 0, "not from the pool");
	wsframe_put(p, f);
	wsframe_pool_free(&p);
}
