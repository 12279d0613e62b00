/* test_dly.c - common/dly: Sierra Chart Text/CSV headers, lines, garbage,
 * and what a line becomes. */
#include <criterion/criterion.h>

#include "dly.h"
#include "record.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define S(x) x, strlen(x)

Test(dly, sierra_daily_line)
{
	struct dly_header h;
	struct dly_bar b;
	const char *why = NULL;
	cr_assert_eq(dly_header_parse(S(DLY_HEADER "\r\n"), &h, &why), 0);
	cr_assert_eq(h.ncols, 7);
	cr_assert(!h.has_time);
	cr_assert_eq(dly_line_parse(&h,
				    S("2025/9/12, 6590.25, 6612.5, 6571, 6603.75, 1402311, 7\n"),
				    &b, &why),
		     0);
	cr_assert_eq(b.ts, 1757635200LL * 1000000000LL);
	cr_assert_eq(b.o, 6590.25);
	cr_assert_eq(b.h, 6612.5);
	cr_assert_eq(b.l, 6571);
	cr_assert_eq(b.c, 6603.75);
	cr_assert_eq(b.v, 1402311);
	cr_assert_eq(b.oi, 7);
	cr_assert(isnan(b.n));
	char line[256];
	int n = dly_line_format(&b, line, sizeof line);
	cr_assert_str_eq(line, "2025/9/12, 6590.25, 6612.5, 6571, 6603.75, 1402311, 7\n");
	cr_assert_eq(n, (int)strlen(line));
	cr_assert_eq(dly_line_format(&b, line, 10), -ENOSPC);
}

Test(dly, intraday_columns_any_order_and_delimiter)
{
	struct dly_header h;
	struct dly_bar b;
	const char *why = NULL;
	cr_assert_eq(
	    dly_header_parse(
		S("Date;Time;Open;High;Low;Last;Volume;NumberOfTrades;BidVolume;AskVolume;Extra"),
		&h, &why),
	    0);
	cr_assert(h.has_time);
	cr_assert_eq(
	    dly_line_parse(&h, S("2025-09-12;13:30:01.5;10;11;9;10.5;100;4;60;40;zz"), &b, &why),
	    0);
	cr_assert_eq(b.ts, (1757635200LL + 13 * 3600 + 30 * 60 + 1) * 1000000000LL + 500000000);
	cr_assert_eq(b.c, 10.5);
	cr_assert_eq(b.n, 4);
	cr_assert_eq(b.bv, 60);
	cr_assert_eq(b.av, 40);
	cr_assert_eq(
	    dly_line_parse(&h, S("20250912\t13:30\t10\t11\t9\t10.5\t100\t4\t60\t40\tq"), &b, &why),
	    0);
	cr_assert_eq(b.ts, (1757635200LL + 13 * 3600 + 30 * 60) * 1000000000LL);
}

Test(dly, garbage_is_an_error_with_a_reason)
{
	struct dly_header h;
	struct dly_bar b;
	const char *why = NULL;
	cr_assert_eq(dly_header_parse(S("Open, High, Low, Close"), &h, &why), -EBADMSG);
	cr_assert_eq(dly_header_parse(S("Date, Open, Open, High, Low, Close"), &h, &why), -EBADMSG);
	cr_assert_eq(dly_header_parse(S(DLY_HEADER), &h, &why), 0);
	static const char *const bad[] = {
	    "2025/2/30, 1, 2, 1, 1, 0, 0",
	    "2025/9/12, 1, 2, 1, 1, 0",
	    "2025/9/12, 1, 2, 1, 1, 0, 0, 9",
	    "2025/9/12, x, 2, 1, 1, 0, 0",
	    "2025/9/12, 1, 0, 1, 1, 0, 0",
	    "2025/9/12, 1, 2, 1, 1, -5, 0",
	    "12/9/2025x, 1, 2, 1, 1, 0, 0",
	    "2025/9/12, nan, 2, 1, 1, 0, 0",
	    "2262/1/1, 1, 2, 1, 1, 0, 0",
	    "1899/12/31, 1, 2, 1, 1, 0, 0",
	    "",
	    "\x01\xff garbage \xfe",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		cr_assert_eq(dly_line_parse(&h, S(bad[i]), &b, &why), -EBADMSG, "%s", bad[i]);
		cr_assert(why && *why);
	}
	char big[2048];
	memset(big, '1', sizeof big);
	cr_assert_eq(dly_line_parse(&h, big, sizeof big, &b, &why), -EBADMSG);
}

Test(dly, encodes_a_bar_with_oi_off_fid)
{
	struct dly_header h;
	struct dly_bar b;
	const char *why = NULL;
	cr_assert_eq(dly_header_parse(S(DLY_HEADER), &h, &why), 0);
	cr_assert_eq(dly_line_parse(&h, S("2025/9/12, 10, 12, 9, 11, 500, 3"), &b, &why), 0);
	uint8_t mp[MDB_REC_MAX_BYTES];
	int n = dly_encode(&b, "ES", 86400, 120, 77, mp, sizeof mp, &why);
	cr_assert_gt(n, 0);
	mdb_codec *c = codec_new();
	char json[1024];
	cr_assert_gt(record_to_json(c, mp, (size_t)n, json, sizeof json, &why), 0);
	cr_assert_str_eq(json,
			 "{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1757635200000000000,\"iv\":86400,"
			 "\"o\":10.0,\"h\":12.0,\"l\":9.0,\"c\":11.0,\"v\":500.0,\"n\":0,"
			 "\"f\":0,\"src\":\"dly\",\"oi\":3.0,\"off\":120,\"fid\":77}");
	struct mdb_record r;
	cr_assert_eq(record_decode(c, mp, (size_t)n, &r, &why), 0);
	cr_assert_eq(r.bar.c, 11);
	cr_assert_eq(dly_encode(&b, "ES", 86400, 120, 77, mp, 20, &why), -ENOSPC);
	codec_free(&c);
}
