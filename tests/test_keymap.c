/* test_keymap.c - common/keymap: dense indexes, growth, lookups. */
#include <criterion/criterion.h>

#include "keymap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

Test(keymap, indexes_are_dense_and_stable_across_growth)
{
	mdb_keymap *m = keymap_new();
	cr_assert_not_null(m);
	char s[16];
	int added;
	for (int i = 0; i < 5000; i++) {
		snprintf(s, sizeof s, "S%d", i / 3);
		cr_assert_eq(keymap_get(m, s, 60 * (i % 3 + 1), &added), i);
		cr_assert_eq(added, 1);
	}
	cr_assert_eq(keymap_count(m), 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(s, sizeof s, "S%d", i / 3);
		cr_assert_eq(keymap_find(m, s, 60 * (i % 3 + 1)), i);
		cr_assert_eq(keymap_get(m, s, 60 * (i % 3 + 1), &added), i);
		cr_assert_eq(added, 0);
		cr_assert_str_eq(keymap_symbol(m, i), s);
		cr_assert_eq(keymap_interval(m, i), 60 * (i % 3 + 1));
	}
	cr_assert_eq(keymap_find(m, "S1", 61), -ENOENT);
	cr_assert_eq(keymap_find(m, "nope", 60), -ENOENT);
	char longsym[40];
	memset(longsym, 'x', sizeof longsym - 1);
	longsym[39] = '\0';
	cr_assert_eq(keymap_get(m, longsym, 60, &added), -EINVAL);
	keymap_free(&m);
	cr_assert_null(m);
	keymap_free(&m);
}
