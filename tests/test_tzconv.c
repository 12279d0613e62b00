/* test_tzconv.c - local wall-clock times to UTC with the system's zone files. */
#include "tzconv.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t local(const char *s)
{
	int64_t l;
	cr_assert_eq(tz_parse_datetime(s, &l), 0, "parse %s", s);
	return l;
}

static const mdb_tz *zone(mdb_tzcache *c, const char *name)
{
	int err;
	const mdb_tz *z = tzcache_get(c, name, &err);
	cr_assert_not_null(z, "zone %s: %s", name, strerror(-err));
	return z;
}

Test(tzconv, new_york_winter_and_summer)
{
	mdb_tzcache *c = tzcache_new();
	const mdb_tz *ny = zone(c, "America/New_York");
	/* 2024-03-08 16:00 EST = 21:00 UTC; 2024-07-01 09:30 EDT = 13:30 UTC */
	cr_assert_eq(tz_local_to_utc(ny, local("2024-03-08 16:00:00")), 1709931600);
	cr_assert_eq(tz_local_to_utc(ny, local("2024-07-01 09:30:00")), 1719840600);
	cr_assert_eq(tz_offset_at(ny, 1719840600), -4 * 3600);
	/* US/Eastern is the same zone under its old name */
	cr_assert_eq(tz_local_to_utc(zone(c, "US/Eastern"), local("2024-07-01 09:30:00")),
		     1719840600);
	tzcache_free(&c);
	cr_assert_null(c);
}

Test(tzconv, repeated_and_skipped_hours)
{
	mdb_tzcache *c = tzcache_new();
	const mdb_tz *ny = zone(c, "America/New_York");
	/* 2024-11-03 01:30 happens twice: the first (EDT, 05:30 UTC) is taken */
	cr_assert_eq(tz_local_to_utc(ny, local("2024-11-03 01:30:00")), 1730611800);
	/* 2024-03-10 02:30 never happens: read with EST, i.e. 07:30 UTC */
	cr_assert_eq(tz_local_to_utc(ny, local("2024-03-10 02:30:00")), 1710055800);
	/* the hour after each change is unambiguous */
	cr_assert_eq(tz_local_to_utc(ny, local("2024-03-10 03:00:00")), 1710054000);
	tzcache_free(&c);
}

Test(tzconv, other_zones_and_far_future)
{
	mdb_tzcache *c = tzcache_new();
	/* London in BST: 08:00 local = 07:00 UTC */
	cr_assert_eq(tz_local_to_utc(zone(c, "Europe/London"), local("2024-06-03 08:00:00")),
		     1717398000);
	cr_assert_eq(tz_local_to_utc(zone(c, "UTC"), local("2024-06-03 08:00:00")), 1717401600);
	/* Tokyo, no DST */
	cr_assert_eq(tz_local_to_utc(zone(c, "Asia/Tokyo"), local("2024-01-01 09:00:00")),
		     1704067200);
	/* 2050-07-01 12:00 EDT: past the transitions of the file, from its footer */
	cr_assert_eq(tz_local_to_utc(zone(c, "America/New_York"), local("2050-07-01 12:00:00")),
		     2540304000);
	cr_assert_eq(tz_local_to_utc(zone(c, "America/New_York"), local("2050-12-01 12:00:00")),
		     2553526800);
	/* Sydney: southern summer in January (+11) */
	cr_assert_eq(tz_offset_at(zone(c, "Australia/Sydney"), 2524608000 + 15 * 86400), 11 * 3600);
	tzcache_free(&c);
}

Test(tzconv, refuses_bad_names_and_bad_files)
{
	int err = 0;
	cr_assert_null(tz_load("../../etc/passwd", &err));
	cr_assert_eq(err, -EINVAL);
	cr_assert_null(tz_load("/etc/localtime", &err));
	cr_assert_eq(err, -EINVAL);
	cr_assert_null(tz_load("No/Such_Zone", &err));
	cr_assert_eq(err, -ENOENT);
	uint8_t junk[64] = "TZif2 but not really";
	cr_assert_null(tz_parse(junk, sizeof junk, &err));
	cr_assert_eq(err, -EINVAL);
	/* every truncation of a real file is refused or parsed, never read past */
	mdb_tz *z = tz_load("Europe/Paris", &err);
	cr_assert_not_null(z);
	tz_free(&z);
	FILE *f = fopen("/usr/share/zoneinfo/Europe/Paris", "rb");
	cr_assert_not_null(f);
	uint8_t buf[8192];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	for (size_t len = 0; len < n; len += 7) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, buf, len);
		mdb_tz *t = tz_parse(copy, len, &err);
		tz_free(&t);
		free(copy);
	}
}

Test(tzconv, datetime_strings)
{
	int64_t l;
	cr_assert_eq(tz_parse_datetime("1970-01-02", &l), 0);
	cr_assert_eq(l, 86400);
	cr_assert_eq(tz_parse_datetime("2024-02-29 23:59:59", &l), 0);
	cr_assert_eq(tz_parse_datetime("2023-02-29 00:00:00", &l), -EINVAL);
	cr_assert_eq(tz_parse_datetime("2024-01-01T00:00:00", &l), -EINVAL);
	cr_assert_eq(tz_parse_datetime("2024-01-01 00:00:00Z", &l), -EINVAL);
	cr_assert_eq(tz_parse_datetime("2024-13-01", &l), -EINVAL);
	cr_assert_eq(tz_parse_datetime("", &l), -EINVAL);
}

Test(tzconv, later_reading_of_a_repeated_hour)
{
	mdb_tzcache *c = tzcache_new();
	const mdb_tz *ny = zone(c, "America/New_York");
	cr_assert_eq(tz_local_to_utc_later(ny, local("2024-11-03 01:30:00")), 1730615400);
	/* unambiguous times read the same either way */
	cr_assert_eq(tz_local_to_utc_later(ny, local("2024-07-01 09:30:00")), 1719840600);
	tzcache_free(&c);
}
