/* test_snapshot.c - common/snapshot: parsing, garbage, formatting round
 * trip, and the changed-fields delta. */
#include <criterion/criterion.h>

#include "record.h"
#include "snapshot.h"

#include <errno.h>
#include <string.h>

static struct snap a, b;

static void json_of(const uint8_t *mp, int n, char *out, size_t cap)
{
	mdb_codec *c = codec_new();
	const char *why;
	cr_assert_gt(record_to_json(c, mp, (size_t)n, out, cap, &why), 0);
	codec_free(&c);
}

Test(snapshot, parse_and_round_trip)
{
	char why[128];
	const char *t =
	    "{\"seq\":3,\"ts\":1000,\"symbols\":{\"ES\":{\"p\":5000.25,\"b\":5000,"
	    "\"a\":5000.25,\"v\":12,\"hi_d\":5010},\"NQ\":{\"ts\":2000,\"p\":null,\"b\":1.5}}}";
	cr_assert_eq(snap_parse(t, strlen(t), &a, why, sizeof why), 0, "%s", why);
	cr_assert_eq(a.seq, 3);
	cr_assert_eq(a.n, 2);
	cr_assert_str_eq(a.q[0].s, "ES");
	cr_assert_eq(a.q[0].ts, 1000);
	cr_assert_eq(a.q[0].nf, 5);
	cr_assert_eq(a.q[1].ts, 2000);
	cr_assert_eq(a.q[1].nf, 1);
	char buf[4096];
	int n = snap_format(&a, buf, sizeof buf);
	cr_assert_gt(n, 0);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_eq(snap_parse(buf, (size_t)n, &b, why, sizeof why), 0, "%s", why);
	cr_assert_eq(b.n, 2);
	cr_assert_eq(memcmp(&a.q[0], &b.q[0], sizeof a.q[0]), 0);
	cr_assert_eq(snap_format(&a, buf, 20), -ENOSPC);
	cr_assert_not_null(snap_find(&a, "NQ"));
	cr_assert_null(snap_find(&a, "CL"));
}

Test(snapshot, garbage_names_the_problem)
{
	char why[128];
	static const char *const bad[] = {
	    "",
	    "{\"seq\":1,\"symbols\":{\"ES\":{\"p\":1}",
	    "[1,2]",
	    "{\"symbols\":{}}",
	    "{\"seq\":-1,\"symbols\":{}}",
	    "{\"seq\":1,\"symbols\":{\"ES\":{\"p\":1}}}",
	    "{\"seq\":1,\"ts\":5,\"symbols\":{\"ES\":{\"p\":\"x\"}}}",
	    "{\"seq\":1,\"ts\":5,\"symbols\":{\"ES\":{\"Bad Key\":1}}}",
	    "{\"seq\":1,\"ts\":5,\"symbols\":{\"ES\":{\"off\":1}}}",
	    "{\"seq\":1,\"ts\":5,\"symbols\":{\"ES\":[1]}}",
	    "{\"seq\":1,\"ts\":5,\"symbols\":{\"ES\":{\"p\":1},\"ES\":{\"p\":2}}}",
	    "\xff\xfe garbage",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		cr_assert_eq(snap_parse(bad[i], strlen(bad[i]), &a, why, sizeof why), -EBADMSG,
			     "%s", bad[i]);
		cr_assert_neq(why[0], '\0');
	}
	cr_assert_eq(
	    snap_parse("{\"seq\":1,\"symbols\":{\"ES\":{\"p\":1}", 31, &a, why, sizeof why),
	    -EBADMSG);
	cr_assert(strstr(why, "offset"), "%s", why);
}

Test(snapshot, delta_holds_only_the_changed_fields)
{
	char why[128], json[1024];
	const char *t1 = "{\"seq\":1,\"ts\":1000,\"symbols\":{\"ES\":{\"p\":10,\"b\":9.75,\"a\":10,"
			 "\"v\":5,\"x1\":7}}}";
	const char *t2 = "{\"seq\":2,\"ts\":2000,\"symbols\":{\"ES\":{\"p\":10,\"b\":9.75,\"a\":10."
			 "25,\"v\":5,\"x1\":8}}}";
	cr_assert_eq(snap_parse(t1, strlen(t1), &a, why, sizeof why), 0);
	cr_assert_eq(snap_parse(t2, strlen(t2), &b, why, sizeof why), 0);
	uint8_t mp[MDB_REC_MAX_BYTES];
	int n = snap_encode_delta(&a.q[0], NULL, 65537, 9, mp, sizeof mp);
	cr_assert_gt(n, 0);
	json_of(mp, n, json, sizeof json);
	cr_assert_str_eq(json,
			 "{\"t\":\"tick\",\"s\":\"ES\",\"ts\":1000,\"p\":10.0,\"v\":5.0,\"b\":9.75,"
			 "\"a\":10.0,\"n\":0,\"src\":\"snap\",\"x1\":7.0,\"off\":65537,\"fid\":9}");
	n = snap_encode_delta(&b.q[0], &a.q[0], -1, 0, mp, sizeof mp);
	cr_assert_gt(n, 0);
	json_of(mp, n, json, sizeof json);
	cr_assert_str_eq(json, "{\"t\":\"tick\",\"s\":\"ES\",\"ts\":2000,\"a\":10.25,\"n\":0,"
			       "\"src\":\"snap\",\"x1\":8.0}");
	cr_assert_eq(snap_encode_delta(&a.q[0], &a.q[0], 1, 1, mp, sizeof mp), 0);
}
