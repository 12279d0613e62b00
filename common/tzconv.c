/* tzconv.c - TZif zones and local-time conversion (see tzconv.h). */
#include "tzconv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_FILE_MAX  (1u << 20)
#define TZ_TYPES_MAX 256

/* One rule date of a POSIX TZ string: Mm.w.d, Jn or n, plus a time of day. */
struct tz_rule {
	char kind;    /* 'M', 'J' or 'D' (zero-based day) */
	int m, w, d;  /* M: month, week (5 = last), weekday; J/D: day in d */
	int32_t secs; /* local time of day of the change */
};

struct mdb_tz {
	int64_t *t;   /* transition times, UTC, ascending */
	uint8_t *idx; /* type after each transition */
	int n;
	int32_t off[TZ_TYPES_MAX];
	int ntypes;
	int32_t first_off; /* before the first transition */
	/* the footer: used after the last transition when present */
	bool footer;
	bool has_dst;
	int32_t std_off, dst_off;
	struct tz_rule start, end;
};

/* ---- civil calendar (proleptic Gregorian), after H. Hinnant's algorithms ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	return yoe + era * 400 + (m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* ---- the POSIX TZ footer ---- */

static const char *parse_name(const char *p)
{
	if (*p == '<') {
		const char *q = strchr(p, '>');
		return q && q > p + 1 ? q + 1 : NULL;
	}
	const char *q = p;
	while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))
		q++;
	return q - p >= 3 ? q : NULL;
}

/* [+-]h[h][:mm[:ss]] into seconds; hours up to 167 (RFC 8536 extension). */
static const char *parse_hms(const char *p, int32_t *out)
{
	int sign = 1;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (*p < '0' || *p > '9')
		return NULL;
	int v[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		if (i > 0) {
			if (*p != ':')
				break;
			p++;
		}
		if (*p < '0' || *p > '9')
			return NULL;
		int x = 0, nd = 0;
		while (*p >= '0' && *p <= '9' && nd < 3)
			x = x * 10 + (*p++ - '0'), nd++;
		v[i] = x;
	}
	if (v[0] > 167 || v[1] > 59 || v[2] > 59)
		return NULL;
	*out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
	return p;
}

static const char *parse_num(const char *p, int *out, int lo, int hi)
{
	if (*p < '0' || *p > '9')
		return NULL;
	int x = 0;
	while (*p >= '0' && *p <= '9' && x <= hi)
		x = x * 10 + (*p++ - '0');
	if (x < lo || x > hi)
		return NULL;
	*out = x;
	return p;
}

static const char *parse_rule(const char *p, struct tz_rule *r)
{
	memset(r, 0, sizeof *r);
	if (*p == 'M') {
		r->kind = 'M';
		if (!(p = parse_num(p + 1, &r->m, 1, 12)) || *p++ != '.' ||
		    !(p = parse_num(p, &r->w, 1, 5)) || *p++ != '.' ||
		    !(p = parse_num(p, &r->d, 0, 6)))
			return NULL;
	} else if (*p == 'J') {
		r->kind = 'J';
		if (!(p = parse_num(p + 1, &r->d, 1, 365)))
			return NULL;
	} else {
		r->kind = 'D';
		if (!(p = parse_num(p, &r->d, 0, 365)))
			return NULL;
	}
	r->secs = 7200;
	if (*p == '/' && !(p = parse_hms(p + 1, &r->secs)))
		return NULL;
	return p;
}

/* "STDoff[DST[off][,rule,rule]]"; an empty footer means "no rule". */
static bool parse_footer(mdb_tz *z, const char *s)
{
	const char *p = parse_name(s);
	int32_t o;
	if (!p || !(p = parse_hms(p, &o)))
		return false;
	z->std_off = -o; /* POSIX offsets count west of Greenwich */
	z->dst_off = z->std_off;
	if (*p == '\0')
		return z->footer = true;
	if (!(p = parse_name(p)))
		return false;
	z->dst_off = z->std_off + 3600;
	if (*p && *p != ',') {
		if (!(p = parse_hms(p, &o)))
			return false;
		z->dst_off = -o;
	}
	/* a DST name without rules: POSIX leaves it to the implementation;
	 * glibc uses the US rules, and so do we */
	if (*p == '\0') {
		z->start = (struct tz_rule){'M', 3, 2, 0, 7200};
		z->end = (struct tz_rule){'M', 11, 1, 0, 7200};
	} else if (*p++ != ',' || !(p = parse_rule(p, &z->start)) || *p++ != ',' ||
		   !(p = parse_rule(p, &z->end)) || *p) {
		return false;
	}
	z->has_dst = true;
	return z->footer = true;
}

/* Local seconds (wall clock of the offset in force before the change) of
 * rule r in year y. */
static int64_t rule_local(const struct tz_rule *r, int64_t y)
{
	int64_t day;
	if (r->kind == 'M') {
		int64_t first = days_from_civil(y, r->m, 1);
		int wd = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
		int64_t d = first + (r->d - wd + 7) % 7 + (int64_t)(r->w - 1) * 7;
		static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		int ml = mdays[r->m - 1] + (r->m == 2 && is_leap(y));
		while (d >= first + ml)
			d -= 7;
		day = d;
	} else if (r->kind == 'J') {
		day = days_from_civil(y, 1, 1) + r->d - 1 + (is_leap(y) && r->d >= 60);
	} else {
		day = days_from_civil(y, 1, 1) + r->d;
	}
	return day * 86400 + r->secs;
}

static int32_t footer_offset(const mdb_tz *z, int64_t u)
{
	if (!z->has_dst)
		return z->std_off;
	int64_t y = year_of_days(floor_div(u + z->std_off, 86400));
	int64_t s = rule_local(&z->start, y) - z->std_off; /* starts in standard time */
	int64_t e = rule_local(&z->end, y) - z->dst_off;   /* ends in summer time */
	bool dst = s < e ? (u >= s && u < e) : !(u >= e && u < s);
	return dst ? z->dst_off : z->std_off;
}

/* ---- TZif ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_hdr {
	uint32_t isut, isstd, leap, time, type, chars;
};

static bool read_hdr(const uint8_t *p, size_t len, struct tzif_hdr *h, int *version)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return false;
	*version = p[4] ? p[4] - '0' : 1;
	h->isut = be32(p + 20);
	h->isstd = be32(p + 24);
	h->leap = be32(p + 28);
	h->time = be32(p + 32);
	h->type = be32(p + 36);
	h->chars = be32(p + 40);
	return h->type >= 1 && h->type <= TZ_TYPES_MAX && h->time <= (1u << 20) &&
	       h->leap <= (1u << 16) && h->chars <= (1u << 16) &&
	       (h->isut == 0 || h->isut == h->type) && (h->isstd == 0 || h->isstd == h->type);
}

static size_t block_size(const struct tzif_hdr *h, int tsize)
{
	return (size_t)h->time * (size_t)(tsize + 1) + (size_t)h->type * 6 + h->chars +
	       (size_t)h->leap * (size_t)(tsize + 4) + h->isstd + h->isut;
}

mdb_tz *tz_parse(const uint8_t *buf, size_t len, int *err)
{
	struct tzif_hdr h;
	int version;
	*err = -EINVAL;
	if (!read_hdr(buf, len, &h, &version))
		return NULL;
	size_t b1 = block_size(&h, 4);
	if (len - 44 < b1)
		return NULL;
	const uint8_t *p = buf + 44;
	int tsize = 4;
	const uint8_t *footer = NULL, *end = buf + len;
	if (version >= 2) {
		/* skip the 32-bit block: the 64-bit one follows with its own header */
		const uint8_t *h2 = p + b1;
		if (!read_hdr(h2, (size_t)(end - h2), &h, &version))
			return NULL;
		size_t b2 = block_size(&h, 8);
		if ((size_t)(end - h2 - 44) < b2)
			return NULL;
		p = h2 + 44;
		tsize = 8;
		footer = p + b2;
	}
	mdb_tz *z = calloc(1, sizeof *z);
	if (!z)
		return *err = -ENOMEM, NULL;
	z->n = (int)h.time;
	z->ntypes = (int)h.type;
	z->t = malloc((size_t)(z->n ? z->n : 1) * sizeof *z->t);
	z->idx = malloc((size_t)(z->n ? z->n : 1));
	if (!z->t || !z->idx) {
		tz_free(&z);
		return *err = -ENOMEM, NULL;
	}
	for (int i = 0; i < z->n; i++) {
		z->t[i] = tsize == 8 ? be64(p + (size_t)i * 8) : (int32_t)be32(p + (size_t)i * 4);
		if (i > 0 && z->t[i] <= z->t[i - 1])
			goto bad;
	}
	p += (size_t)z->n * (size_t)tsize;
	for (int i = 0; i < z->n; i++) {
		z->idx[i] = p[i];
		if (p[i] >= z->ntypes)
			goto bad;
	}
	p += z->n;
	for (int i = 0; i < z->ntypes; i++) {
		int32_t off = (int32_t)be32(p + (size_t)i * 6);
		if (off < -25 * 3600 || off > 26 * 3600)
			goto bad;
		z->off[i] = off;
	}
	/* RFC 8536: before the first transition, type 0 is in force */
	z->first_off = z->off[0];
	if (footer && footer < end && *footer == '\n') {
		const uint8_t *nl = memchr(footer + 1, '\n', (size_t)(end - footer - 1));
		if (nl && nl > footer + 1) {
			char s[128];
			size_t n = (size_t)(nl - footer - 1);
			if (n >= sizeof s)
				goto bad;
			memcpy(s, footer + 1, n);
			s[n] = '\0';
			if (memchr(s, '\0', n) || !parse_footer(z, s))
				goto bad;
		}
	}
	*err = 0;
	return z;
bad:
	tz_free(&z);
	return NULL;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= TZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '_' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

mdb_tz *tz_load(const char *name, int *err)
{
	if (!name_ok(name))
		return *err = -EINVAL, NULL;
	const char *dir = getenv("TZDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return *err = -errno, NULL;
	struct stat st;
	uint8_t *buf = NULL;
	mdb_tz *z = NULL;
	if (fstat(fd, &st) < 0) {
		*err = -errno;
	} else if (!S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
		*err = -EINVAL;
	} else if (!(buf = malloc((size_t)st.st_size + 1))) {
		*err = -ENOMEM;
	} else {
		size_t got = 0;
		while (got < (size_t)st.st_size) {
			ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		z = tz_parse(buf, got, err);
	}
	free(buf);
	close(fd);
	return z;
}

void tz_free(mdb_tz **z)
{
	if (!z || !*z)
		return;
	free((*z)->t);
	free((*z)->idx);
	free(*z);
	*z = NULL;
}

int32_t tz_offset_at(const mdb_tz *z, int64_t u)
{
	if (z->n == 0 || u < z->t[0])
		return z->n == 0 && z->footer ? footer_offset(z, u) : z->first_off;
	if (u >= z->t[z->n - 1] && z->footer)
		return footer_offset(z, u);
	int lo = 0, hi = z->n - 1; /* the last transition <= u */
	while (lo < hi) {
		int mid = lo + (hi - lo + 1) / 2;
		if (z->t[mid] <= u)
			lo = mid;
		else
			hi = mid - 1;
	}
	return z->off[z->idx[lo]];
}

static int64_t local_to_utc(const mdb_tz *z, int64_t l, bool later)
{
	/* the offsets a day either side: no zone changes twice within two days */
	int32_t a = tz_offset_at(z, l - 86400), b = tz_offset_at(z, l + 86400);
	int64_t ua = l - a, ub = l - b;
	bool va = tz_offset_at(z, ua) == a, vb = tz_offset_at(z, ub) == b;
	if (va && vb)
		return (ua < ub) != later ? ua : ub;
	if (vb)
		return ub;
	return ua; /* valid, or in a gap: the offset from before the change */
}

int64_t tz_local_to_utc(const mdb_tz *z, int64_t l)
{
	return local_to_utc(z, l, false);
}

int64_t tz_local_to_utc_later(const mdb_tz *z, int64_t l)
{
	return local_to_utc(z, l, true);
}

static bool digits(const char *s, int n, int *out)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*out = x;
	return true;
}

int tz_parse_datetime(const char *s, int64_t *local_s)
{
	int y, mo, d, H = 0, M = 0, S = 0;
	size_t n = strlen(s);
	if ((n != 10 && n != 19) || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d))
		return -EINVAL;
	if (n == 19 && (s[10] != ' ' || !digits(s + 11, 2, &H) || s[13] != ':' ||
			!digits(s + 14, 2, &M) || s[16] != ':' || !digits(s + 17, 2, &S)))
		return -EINVAL;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || H > 23 ||
	    M > 59 || S > 60)
		return -EINVAL;
	*local_s = days_from_civil(y, mo, d) * 86400 + H * 3600 + M * 60 + S;
	return 0;
}

/* ---- the cache ---- */

struct tzcache_ent {
	char name[TZ_NAME_MAX];
	mdb_tz *z; /* NULL: loading failed with err */
	int err;
};

struct mdb_tzcache {
	struct tzcache_ent *e;
	int n, cap;
};

mdb_tzcache *tzcache_new(void)
{
	return calloc(1, sizeof(mdb_tzcache));
}

const mdb_tz *tzcache_get(mdb_tzcache *c, const char *name, int *err)
{
	for (int i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].name, name) == 0) {
			*err = c->e[i].err;
			return c->e[i].z;
		}
	}
	if (strlen(name) >= TZ_NAME_MAX)
		return *err = -EINVAL, NULL;
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 8;
		struct tzcache_ent *e = realloc(c->e, (size_t)cap * sizeof *e);
		if (!e)
			return *err = -ENOMEM, NULL;
		c->e = e;
		c->cap = cap;
	}
	struct tzcache_ent *e = &c->e[c->n++];
	snprintf(e->name, sizeof e->name, "%s", name);
	e->err = 0;
	e->z = tz_load(name, &e->err);
	*err = e->err;
	return e->z;
}

void tzcache_free(mdb_tzcache **c)
{
	if (!c || !*c)
		return;
	for (int i = 0; i < (*c)->n; i++)
		tz_free(&(*c)->e[i].z);
	free((*c)->e);
	free(*c);
	*c = NULL;
}
