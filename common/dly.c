/* dly.c - Sierra Chart Text/CSV data lines (see dly.h). */
#include "dly.h"
#include "record.h"
#include "scid.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DLY_FIELD_MAX 64

static const struct {
	const char *name; /* lower case, no spaces */
	enum dly_col col;
} dly_names[] = {
    {"date", DLY_DATE},	       {"time", DLY_TIME},
    {"open", DLY_OPEN},	       {"high", DLY_HIGH},
    {"low", DLY_LOW},	       {"close", DLY_CLOSE},
    {"last", DLY_CLOSE},       {"volume", DLY_VOLUME},
    {"openinterest", DLY_OI},  {"numberoftrades", DLY_TRADES},
    {"trades", DLY_TRADES},    {"#oftrades", DLY_TRADES},
    {"bidvolume", DLY_BIDVOL}, {"askvolume", DLY_ASKVOL},
};

/* The line without its line end. */
static size_t chomp(const char *line, size_t len)
{
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	return len;
}

/* Split line[0..len) at the next delimiter from *pos: the field, spaces
 * trimmed, into f[0..DLY_FIELD_MAX) NUL-terminated. Returns its length, or
 * -1 when the field is too long. *pos moves past the delimiter (len: none). */
static int next_field(const char *line, size_t len, size_t *pos, char *f)
{
	size_t i = *pos;
	while (i < len && line[i] != ',' && line[i] != '\t' && line[i] != ';')
		i++;
	size_t a = *pos, b = i;
	*pos = i < len ? i + 1 : len + 1;
	while (a < b && line[a] == ' ')
		a++;
	while (b > a && line[b - 1] == ' ')
		b--;
	if (b - a >= DLY_FIELD_MAX)
		return -1;
	memcpy(f, line + a, b - a);
	f[b - a] = '\0';
	return (int)(b - a);
}

int dly_header_parse(const char *line, size_t len, struct dly_header *h, const char **why)
{
	len = chomp(line, len);
	memset(h, 0, sizeof *h);
	bool seen[DLY_NCOLS] = {0};
	char f[DLY_FIELD_MAX];
	for (size_t pos = 0; pos <= len;) {
		if (h->ncols == DLY_MAX_COLS)
			return *why = "header: too many columns", -EBADMSG;
		int n = next_field(line, len, &pos, f);
		if (n < 0)
			return *why = "header: column name too long", -EBADMSG;
		char key[DLY_FIELD_MAX];
		size_t k = 0;
		for (int i = 0; i < n; i++)
			if (f[i] != ' ')
				key[k++] = (char)tolower((unsigned char)f[i]);
		key[k] = '\0';
		enum dly_col c = DLY_SKIP;
		for (size_t i = 0; i < sizeof dly_names / sizeof dly_names[0]; i++)
			if (strcmp(key, dly_names[i].name) == 0)
				c = dly_names[i].col;
		if (c != DLY_SKIP && seen[c])
			return *why = "header: a column given twice", -EBADMSG;
		seen[c] = true;
		h->col[h->ncols++] = (uint8_t)c;
	}
	if (!seen[DLY_DATE] || !seen[DLY_OPEN] || !seen[DLY_HIGH] || !seen[DLY_LOW] ||
	    !seen[DLY_CLOSE])
		return *why = "header: not a Date, Open, High, Low, Close header", -EBADMSG;
	h->has_time = seen[DLY_TIME];
	return 0;
}

/* All of s is the unsigned decimal number *v of at least one digit. */
static bool digits(const char *s, size_t n, int *v)
{
	if (n == 0 || n > 9)
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

/* Seconds since the epoch of a date, or -1. */
static int64_t parse_date(const char *f)
{
	int y, m, d;
	size_t n = strlen(f);
	const char *s1 = strpbrk(f, "/-");
	if (!s1) {
		if (n != 8 || !digits(f, 4, &y) || !digits(f + 4, 2, &m) || !digits(f + 6, 2, &d))
			return -1;
	} else {
		const char *s2 = strchr(s1 + 1, *s1);
		if (!s2 || !digits(f, (size_t)(s1 - f), &y) ||
		    !digits(s1 + 1, (size_t)(s2 - s1 - 1), &m) ||
		    !digits(s2 + 1, strlen(s2 + 1), &d))
			return -1;
	}
	/* int64 ns since 1970 ends in April 2262 */
	if (y < 1900 || y > 2261 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
	int64_t t = (int64_t)timegm(&tm);
	if (tm.tm_mday != d)
		return -1; /* 2025/2/30 */
	return t;
}

/* Nanoseconds since midnight of a time of day, or -1. */
static int64_t parse_time(const char *f)
{
	int hh, mm, ss = 0, frac = 0, fd = 0;
	size_t n = strlen(f);
	if (n < 5 || f[2] != ':' || !digits(f, 2, &hh) || !digits(f + 3, 2, &mm))
		return -1;
	if (n > 5) {
		if (n < 8 || f[5] != ':' || !digits(f + 6, 2, &ss))
			return -1;
		if (n > 8) {
			fd = (int)(n - 9);
			if (f[8] != '.' || fd > 9 || !digits(f + 9, (size_t)fd, &frac))
				return -1;
		}
	}
	if (hh > 23 || mm > 59 || ss > 60)
		return -1;
	int64_t ns = frac;
	for (int i = fd; i < 9; i++)
		ns *= 10;
	return ((int64_t)hh * 3600 + mm * 60 + ss) * 1000000000LL + ns;
}

int dly_line_parse(const struct dly_header *h, const char *line, size_t len, struct dly_bar *b,
		   const char **why)
{
	len = chomp(line, len);
	if (len > DLY_LINE_MAX)
		return *why = "line too long", -EBADMSG;
	double *val[DLY_NCOLS] = {
	    [DLY_OPEN] = &b->o,	  [DLY_HIGH] = &b->h,	 [DLY_LOW] = &b->l,
	    [DLY_CLOSE] = &b->c,  [DLY_VOLUME] = &b->v,	 [DLY_OI] = &b->oi,
	    [DLY_TRADES] = &b->n, [DLY_BIDVOL] = &b->bv, [DLY_ASKVOL] = &b->av,
	};
	b->o = b->h = b->l = b->c = b->v = b->oi = b->n = b->bv = b->av = NAN;
	int64_t day = -1, tod = 0;
	char f[DLY_FIELD_MAX];
	size_t pos = 0;
	for (int i = 0; i < h->ncols; i++) {
		if (pos > len)
			return *why = "too few fields", -EBADMSG;
		if (next_field(line, len, &pos, f) < 0)
			return *why = "field too long", -EBADMSG;
		switch (h->col[i]) {
		case DLY_SKIP:
			break;
		case DLY_DATE:
			if ((day = parse_date(f)) < 0)
				return *why = "Date: not a date", -EBADMSG;
			break;
		case DLY_TIME:
			if ((tod = parse_time(f)) < 0)
				return *why = "Time: not a time of day", -EBADMSG;
			break;
		default: {
			char *end;
			double x = strtod(f, &end);
			if (!*f || *end || !isfinite(x))
				return *why = "a price or volume is not a number", -EBADMSG;
			if (h->col[i] >= DLY_VOLUME && x < 0)
				return *why = "a volume is negative", -EBADMSG;
			/* counts become int64 (trades): keep them well inside it */
			if (h->col[i] >= DLY_VOLUME && x > 1e15)
				return *why = "a volume or count is too large", -EBADMSG;
			*val[h->col[i]] = x;
		}
		}
	}
	if (pos <= len)
		return *why = "too many fields", -EBADMSG;
	if (b->h < b->l)
		return *why = "High is below Low", -EBADMSG;
	b->ts = day * 1000000000LL + tod;
	return 0;
}

int dly_line_format(const struct dly_bar *b, char *buf, size_t cap)
{
	time_t t = (time_t)(b->ts / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	int n = snprintf(buf, cap, "%d/%d/%d, %.10g, %.10g, %.10g, %.10g, %.0f, %.0f\n",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, b->o, b->h, b->l, b->c,
			 isnan(b->v) ? 0 : b->v, isnan(b->oi) ? 0 : b->oi);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int dly_encode(const struct dly_bar *b, const char *sym, int32_t iv, int64_t off, uint32_t fid,
	       uint8_t *buf, size_t cap, const char **why)
{
	struct mdb_record rec;
	record_init(&rec, MDB_REC_BAR);
	size_t slen = strlen(sym);
	if (slen >= sizeof rec.s)
		return *why = "symbol too long", -EBADMSG;
	memcpy(rec.s, sym, slen + 1);
	memcpy(rec.src, "dly", 4);
	rec.ts = b->ts;
	rec.bar.iv = iv;
	rec.bar.o = b->o;
	rec.bar.h = b->h;
	rec.bar.l = b->l;
	rec.bar.c = b->c;
	rec.bar.v = b->v;
	rec.bar.n = isnan(b->n) ? 0 : (int64_t)b->n;
	rec.bar.bv = b->bv;
	rec.bar.av = b->av;
	int len = record_encode(&rec, buf, cap);
	if (len < 0)
		return len;
	uint8_t kv[128];
	size_t kvlen = 0;
	unsigned n = 0;
	if (!isnan(b->oi)) {
		kvlen += scid_kv_f64(kv + kvlen, "oi", b->oi);
		n++;
	}
	if (off >= 0) {
		kvlen += scid_kv_uint(kv + kvlen, "off", (uint64_t)off);
		kvlen += scid_kv_uint(kv + kvlen, "fid", fid);
		n += 2;
	}
	return n ? scid_map_append(buf, (size_t)len, cap, n, kv, kvlen) : len;
}
