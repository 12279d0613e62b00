/* test_symmap.c - common/symmap: the symbol map file format. */
#include <criterion/criterion.h>

#include "symmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mdb_symmap *parse(const char *text, int *err, int *line, const char **why)
{
	*err = 0;
	return symmap_parse(text, strlen(text), err, line, why);
}

Test(symmap, maps_names_and_ignores_comments_and_blanks)
{
	int err, line;
	const char *why;
	mdb_symmap *m = parse("# the front months\n\n  NQU25-CME\tNQ\r\nESZ25-CME ES   \n"
			      "   # indented comment\nCL-NYMEX CL",
			      &err, &line, &why);
	cr_assert_not_null(m, "err %d line %d %s", err, line, why ? why : "");
	cr_assert_eq(symmap_count(m), 3);
	cr_assert_str_eq(symmap_lookup(m, "NQU25-CME"), "NQ");
	cr_assert_str_eq(symmap_lookup(m, "ESZ25-CME"), "ES");
	cr_assert_str_eq(symmap_lookup(m, "CL-NYMEX"), "CL");
	cr_assert_null(symmap_lookup(m, "nqu25-cme"));
	cr_assert_null(symmap_lookup(m, "NQ"));
	symmap_free(&m);
	cr_assert_null(m);
	symmap_free(&m);
	cr_assert_null(symmap_lookup(NULL, "NQ"));
}

Test(symmap, bad_lines_name_their_number)
{
	static const struct {
		const char *text;
		int line;
	} bad[] = {
	    {"A B\nlonely\n", 2},
	    {"A B C\n", 1},
	    {"\n\nA 0123456789012345678901234567890123\n", 3},
	    {"A B\nA C\n", 2},			/* mapped twice: the second mapping */
	    {"Z Y\n# c\nA B\n\nZ X\nZ W\n", 5}, /* and again: still the second */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int err, line;
		const char *why;
		mdb_symmap *m = parse(bad[i].text, &err, &line, &why);
		cr_assert_null(m, "case %zu", i);
		cr_assert_eq(err, -EINVAL, "case %zu", i);
		cr_assert_eq(line, bad[i].line, "case %zu: line %d", i, line);
		cr_assert_not_null(why);
	}
}

Test(symmap, loads_a_file_and_reports_a_missing_one)
{
	char path[] = "/tmp/mdb-symmap.XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char *text = "NQU25-CME NQ\n";
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int err = 0, line;
	const char *why;
	mdb_symmap *m = symmap_load(path, &err, &line, &why);
	unlink(path);
	cr_assert_not_null(m);
	cr_assert_str_eq(symmap_lookup(m, "NQU25-CME"), "NQ");
	symmap_free(&m);
	cr_assert_null(symmap_load(path, &err, &line, &why));
	cr_assert_eq(err, -ENOENT);
	cr_assert_eq(line, 0);
}
