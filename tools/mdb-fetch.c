/* mdb-fetch - keep bars flowing from HTTP market-data APIs (Yahoo Finance,
 * Alpha Vantage, Twelve Data, Polygon) without ever breaking their limits.
 *
 * One process, one event loop: libcurl's multi interface runs every
 * transfer at once over reused connections, and curl_multi_poll() sleeps
 * until a transfer, the cadence timerfd or the stop signal's eventfd needs
 * us. Each cadence tick (1 s by default) marks every symbol due; a due
 * symbol is asked of its highest-priority source that is healthy (circuit
 * breaker closed, or half-open with its probe free), has budget left (its
 * per-minute window and daily quota) and is not paused after a rate-limit
 * answer; a source at its concurrency cap makes the symbol wait for a free
 * slot rather than spend a lower-priority budget. A failed or rate-limited
 * answer moves the symbol to the next source in the same cycle.
 *
 * Each request asks only for bars from the last one this process has (that
 * one included while it is still forming) and a bar is written only when it
 * is new, its values changed, or it became final. --backfill DURATION asks
 * for history in chunks (never across a UTC month: Alpha Vantage serves a
 * month per request), paced by the same limits, writes final bars only,
 * shows progress on stderr and exits.
 *
 * API keys come from $CREDENTIALS_DIRECTORY/NAME or the environment variable
 * NAME (the config names NAME, never the key); a key is part of the request
 * URL, so URLs are never logged.
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "endpoint.h"
#include "fetchsrc.h"
#include "log.h"
#include "notify.h"
#include "ratelimit.h"
#include "record.h"
#include "symmap.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS		      1000000000LL
#define FETCH_MAX_SOURCES     8
#define FETCH_MAX_SYMBOLS     4096
#define FETCH_TICKER_MAX      128
#define FETCH_URL_MAX	      2048
#define FETCH_KEY_MAX	      256
#define FETCH_BODY_MAX	      (64u << 20) /* a larger answer is an error, not a memory hog */
#define FETCH_BACKFILL_ROUNDS 3		  /* full rounds of failures before a chunk is given up */

enum {
	OPT_CONFIG = CLI_OPT_FIRST_TOOL,
	OPT_CADENCE,
	OPT_LOOKBACK,
	OPT_BACKFILL,
	OPT_BASE_URL,
};

struct source {
	char name[MDB_SRC_MAX];
	enum fsrc_type type;
	char url[512];
	char keyname[64];
	char key[FETCH_KEY_MAX]; /* secret: never logged */
	int priority;		 /* lower is asked first */
	uint32_t rate;		 /* requests per minute; 0: unlimited */
	uint64_t daily;		 /* requests per UTC day; 0: unlimited */
	int concurrency;	 /* transfers at once */
	int64_t timeout_ns;
	uint32_t fail_threshold; /* failures in a row that open the breaker */
	int64_t cooldown_ns;	 /* open -> half-open */
	int64_t pause_ns;	 /* after a rate-limit answer without Retry-After */
	int64_t chunk_ns;	 /* backfill: time asked per request */
	mdb_symmap *map;	 /* canonical symbol <- this API's ticker */
	const char *mapfile;
	struct rl_window win;
	struct rl_quota quota;
	struct rl_breaker br;
	int inflight;
	int64_t paused_until; /* monotonic */
	mdb_counter *c_req, *c_err, *c_rl, *c_state, *c_bars, *c_symerr;
};

struct symbol {
	char s[MDB_SYM_MAX];
	int order[FETCH_MAX_SOURCES]; /* source indices, preferred first */
	int norder;
	char ticker[FETCH_MAX_SOURCES][FETCH_TICKER_MAX]; /* by source index */
	bool busy;					  /* a transfer is in flight */
	bool due;					  /* wants an answer this cycle */
	uint32_t tried; /* sources that failed this cycle (bit per index) */
	/* per source: answers about this symbol only ("unknown symbol", a body
	 * that does not parse) open this, not the source's breaker */
	struct rl_breaker br[FETCH_MAX_SOURCES];
	bool have_last; /* last is the newest bar written */
	struct fsrc_bar last;
	bool last_final;
	/* backfill */
	int64_t bf_from, bf_end; /* the next chunk starts at bf_from */
	int bf_rounds;
	int64_t bf_retry_at; /* monotonic: a new round of sources not before */
	bool bf_done;
};

struct xfer {
	CURL *h;
	bool used;
	struct symbol *sy;
	int src; /* source index */
	int64_t from, to;
	int64_t sent_ns; /* wall clock when the request went: bars that ended by then are final */
	char *body;
	size_t len, cap;
	bool too_big;
	char url[FETCH_URL_MAX];
};

static struct {
	struct source src[FETCH_MAX_SOURCES];
	int nsrc;
	struct symbol *sym;
	int nsym;
	int iv;
	int64_t cadence_ns, lookback_ns, backfill_ns;
	CURLM *multi;
	struct xfer *xf;
	int nxf;
	mdb_outputs *out;
	mdb_tzcache *zones;
	struct fsrc_result res;
	mdb_counter *c_out, *c_req, *c_err, *c_rl, *c_bad, *c_cycles, *c_late, *c_skipped;
	mdb_counter *c_symerr, *c_timeouts, *c_ontime;
	int rr; /* round-robin start among symbols */
	bool stop;
	/* backfill progress */
	int64_t bf_total_ns, bf_done_ns;
	uint64_t bf_req, bf_bars;
	int bf_failed;
	int64_t bf_last_print;
	bool tty;
} F;

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-fetch -c FILE [-o ENDPOINT]... [--name NAME] [--json] [--ring-size SIZE]\n"
	    "                 [--cadence DURATION] [--lookback DURATION] [--backfill DURATION]\n"
	    "                 [--base-url SOURCE=URL]...\n"
	    "Poll HTTP market-data APIs for bars, within their limits, with fallback.\n"
	    "  -c, --config FILE       sources, limits and symbols (see mdb-fetch(1))\n"
	    "  -o, --output ENDPOINT   write to ENDPOINT (repeatable; default -)\n"
	    "      --name NAME         instance name in the counters (default mdb-fetch)\n"
	    "      --json              stdout carries JSON lines, not MessagePack\n"
	    "      --ring-size SIZE    capacity of rings this creates (default 64M)\n"
	    "      --cadence DURATION  how often each symbol is asked (default 1s)\n"
	    "      --lookback DURATION history asked for on a symbol's first request (default "
	    "10m)\n"
	    "      --backfill DURATION fetch this much history as final bars, then exit\n"
	    "      --base-url SOURCE=URL  override a source's base URL\n"
	    "  -h, --help              show this help\n"
	    "  -V, --version           show the version\n" CLI_USAGE_ENDPOINTS);
	exit(out == stdout ? 0 : 2);
}

/* ---- configuration ---- */

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n >= max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

/* Read the key called name: $CREDENTIALS_DIRECTORY/name (systemd's
 * LoadCredential=) first, then the environment. Returns 0, -ENOENT or
 * -EINVAL (empty, too long, or a byte that cannot be in a URL query). */
static int load_key(const char *name, char *key, size_t cap)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	key[0] = '\0';
	if (dir && *dir) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, key, cap - 1);
			close(fd);
			if (n < 0)
				return -errno;
			key[n] = '\0';
			while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
				key[--n] = '\0';
		}
	}
	if (!key[0]) {
		const char *v = getenv(name);
		if (!v)
			return -ENOENT;
		if (strlen(v) >= cap)
			return -EINVAL;
		snprintf(key, cap, "%s", v);
	}
	if (!key[0] || strlen(key) >= cap - 1)
		return -EINVAL;
	for (const char *p = key; *p; p++)
		if (!isgraph((unsigned char)*p))
			return -EINVAL;
	return 0;
}

static struct source *source_by_name(const char *name)
{
	for (int i = 0; i < F.nsrc; i++)
		if (strcmp(F.src[i].name, name) == 0)
			return &F.src[i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

#define CFG_FAIL(...) die(2, __VA_ARGS__)

static void cfg_source(const char *file, int line, char **tok, int ntok)
{
	if (ntok < 2)
		CFG_FAIL("%s:%d: expected: source NAME type=TYPE ...", file, line);
	if (F.nsrc == FETCH_MAX_SOURCES)
		CFG_FAIL("%s:%d: more than %d sources", file, line, FETCH_MAX_SOURCES);
	if (!name_ok(tok[1], MDB_SRC_MAX))
		CFG_FAIL("%s:%d: bad source name '%s' (letters, digits, _ and -, up to %d)", file,
			 line, tok[1], MDB_SRC_MAX - 1);
	if (source_by_name(tok[1]))
		CFG_FAIL("%s:%d: source %s given twice", file, line, tok[1]);
	struct source *s = &F.src[F.nsrc];
	*s = (struct source){.type = -1,
			     .priority = F.nsrc + 1,
			     .concurrency = 4,
			     .timeout_ns = 10 * NS,
			     .fail_threshold = 5,
			     .cooldown_ns = 30 * NS,
			     .pause_ns = 60 * NS,
			     .chunk_ns = 7 * 86400 * NS};
	snprintf(s->name, sizeof s->name, "%s", tok[1]);
	for (int i = 2; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');
		if (!eq)
			CFG_FAIL("%s:%d: expected key=value, got '%s'", file, line, tok[i]);
		*eq = '\0';
		const char *k = tok[i], *v = eq + 1;
		uint64_t u = 0;
		long long d = 0;
		bool num = parse_u64(v, &u) == 0, dur = cli_parse_duration(v, &d) == 0;
		if (strcmp(k, "type") == 0) {
			int t = fsrc_type_parse(v);
			if (t < 0)
				CFG_FAIL(
				    "%s:%d: unknown type '%s' (yahoo, alphavantage, twelvedata, "
				    "polygon)",
				    file, line, v);
			s->type = t;
		} else if (strcmp(k, "url") == 0) {
			if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
				CFG_FAIL("%s:%d: url must start with http:// or https://", file,
					 line);
			snprintf(s->url, sizeof s->url, "%s", v);
		} else if (strcmp(k, "key") == 0) {
			if (!name_ok(v, sizeof s->keyname))
				CFG_FAIL("%s:%d: key= names a variable or credential, not a key",
					 file, line);
			snprintf(s->keyname, sizeof s->keyname, "%s", v);
		} else if (strcmp(k, "priority") == 0 && num && u < 1000) {
			s->priority = (int)u;
		} else if (strcmp(k, "rate") == 0 && num && u <= 1000000) {
			s->rate = (uint32_t)u;
		} else if (strcmp(k, "daily") == 0 && num) {
			s->daily = u;
		} else if (strcmp(k, "concurrency") == 0 && num && u >= 1 && u <= 256) {
			s->concurrency = (int)u;
		} else if (strcmp(k, "timeout") == 0 && dur && d >= 1000000) {
			s->timeout_ns = d;
		} else if (strcmp(k, "failures") == 0 && num && u >= 1 && u <= 1000) {
			s->fail_threshold = (uint32_t)u;
		} else if (strcmp(k, "cooldown") == 0 && dur) {
			s->cooldown_ns = d;
		} else if (strcmp(k, "pause") == 0 && dur) {
			s->pause_ns = d;
		} else if (strcmp(k, "chunk") == 0 && dur && d >= 60 * NS) {
			s->chunk_ns = d;
		} else if (strcmp(k, "map") == 0) {
			if (!(s->mapfile = strdup(v)))
				die(1, "out of memory");
		} else {
			CFG_FAIL("%s:%d: bad setting %s=%s", file, line, k, v);
		}
	}
	if ((int)s->type < 0)
		CFG_FAIL("%s:%d: source %s has no type=", file, line, s->name);
	F.nsrc++;
}

static struct symbol *cfg_add_symbol(const char *file, int line, const char *name)
{
	if (strlen(name) == 0 || strlen(name) >= MDB_SYM_MAX)
		CFG_FAIL("%s:%d: bad symbol '%s'", file, line, name);
	for (int i = 0; i < F.nsym; i++)
		if (strcmp(F.sym[i].s, name) == 0)
			CFG_FAIL("%s:%d: symbol %s given twice", file, line, name);
	if (F.nsym == FETCH_MAX_SYMBOLS)
		CFG_FAIL("%s:%d: more than %d symbols", file, line, FETCH_MAX_SYMBOLS);
	struct symbol *sy = &F.sym[F.nsym++];
	memset(sy, 0, sizeof *sy);
	snprintf(sy->s, sizeof sy->s, "%s", name);
	sy->norder = -1; /* every source, by priority (resolved after reading) */
	return sy;
}

static void load_config(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(2, "%s: %s", path, strerror(errno));
	F.sym = calloc(FETCH_MAX_SYMBOLS, sizeof *F.sym);
	if (!F.sym)
		die(1, "out of memory");
	char buf[8192];
	int line = 0;
	while (fgets(buf, sizeof buf, f)) {
		line++;
		if (!strchr(buf, '\n') && !feof(f))
			CFG_FAIL("%s:%d: line too long", path, line);
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *tok[4096]; /* a 8 KiB line holds at most 4096 words */
		int ntok = 0;
		for (char *p = strtok(buf, " \t\r\n"); p; p = strtok(NULL, " \t\r\n")) {
			if (ntok == 4096)
				CFG_FAIL("%s:%d: too many words", path, line);
			tok[ntok++] = p;
		}
		if (ntok == 0)
			continue;
		if (strcmp(tok[0], "source") == 0) {
			cfg_source(path, line, tok, ntok);
		} else if (strcmp(tok[0], "symbols") == 0) {
			for (int i = 1; i < ntok; i++)
				cfg_add_symbol(path, line, tok[i]);
		} else if (strcmp(tok[0], "symbol") == 0) {
			if (ntok < 2)
				CFG_FAIL("%s:%d: expected: symbol SYMBOL [SOURCE...]", path, line);
			struct symbol *sy = cfg_add_symbol(path, line, tok[1]);
			if (ntok > 2) {
				sy->norder = 0;
				for (int i = 2; i < ntok; i++) {
					struct source *s = source_by_name(tok[i]);
					if (!s)
						CFG_FAIL("%s:%d: unknown source %s (sources come "
							 "before the symbols that name them)",
							 path, line, tok[i]);
					if (sy->norder == FETCH_MAX_SOURCES)
						CFG_FAIL("%s:%d: too many sources", path, line);
					sy->order[sy->norder++] = (int)(s - F.src);
				}
			}
		} else if (strcmp(tok[0], "interval") == 0) {
			uint64_t u;
			if (ntok != 2 || parse_u64(tok[1], &u) < 0 || u < 1 || u > 7 * 86400)
				CFG_FAIL("%s:%d: expected: interval SECONDS", path, line);
			F.iv = (int)u;
		} else {
			CFG_FAIL("%s:%d: unknown directive '%s'", path, line, tok[0]);
		}
	}
	fclose(f);
	if (F.nsrc == 0)
		die(2, "%s: no source", path);
	if (F.nsym == 0)
		die(2, "%s: no symbol", path);
}

static int by_priority(const void *a, const void *b)
{
	const struct source *x = &F.src[*(const int *)a], *y = &F.src[*(const int *)b];
	return (x->priority > y->priority) - (x->priority < y->priority);
}

/* The first words of a map file's mapping lines, i.e. its tickers: symmap
 * answers ticker -> symbol, and the fetcher needs the reverse, so each
 * ticker is looked up once here. */
static void resolve_tickers(struct source *s, int si)
{
	for (int i = 0; i < F.nsym; i++)
		memcpy(F.sym[i].ticker[si], F.sym[i].s,
		       sizeof F.sym[i].s); /* MDB_SYM_MAX < FETCH_TICKER_MAX */
	if (!s->mapfile)
		return;
	int err, line;
	const char *why;
	s->map = symmap_load(s->mapfile, &err, &line, &why);
	if (!s->map && line)
		die(2, "%s: line %d: %s", s->mapfile, line, why);
	if (!s->map)
		die(2, "%s: %s", s->mapfile, why ? why : strerror(-err));
	FILE *f = fopen(s->mapfile, "r");
	if (!f)
		die(2, "%s: %s", s->mapfile, strerror(errno));
	char buf[1024];
	while (fgets(buf, sizeof buf, f)) {
		char *t = strtok(buf, " \t\r\n");
		if (!t || *t == '#')
			continue;
		const char *sym = symmap_lookup(s->map, t);
		if (!sym)
			continue;
		for (int i = 0; i < F.nsym; i++)
			if (strcmp(F.sym[i].s, sym) == 0)
				snprintf(F.sym[i].ticker[si], FETCH_TICKER_MAX, "%s", t);
	}
	fclose(f);
}

static void finish_config(char **base_urls, int nbase)
{
	if (!F.iv)
		F.iv = 60;
	for (int i = 0; i < nbase; i++) {
		char *eq = strchr(base_urls[i], '=');
		if (!eq)
			die(2, "--base-url %s: expected SOURCE=URL", base_urls[i]);
		*eq = '\0';
		struct source *s = source_by_name(base_urls[i]);
		if (!s)
			die(2, "--base-url: no source called %s", base_urls[i]);
		if (strncmp(eq + 1, "http://", 7) && strncmp(eq + 1, "https://", 8))
			die(2, "--base-url %s: the URL must start with http:// or https://",
			    s->name);
		snprintf(s->url, sizeof s->url, "%s", eq + 1);
	}
	static const char *const default_url[FSRC_NTYPES] = {
	    "https://query1.finance.yahoo.com", "https://www.alphavantage.co",
	    "https://api.twelvedata.com", "https://api.polygon.io"};
	for (int i = 0; i < F.nsrc; i++) {
		struct source *s = &F.src[i];
		if (!s->url[0])
			snprintf(s->url, sizeof s->url, "%s", default_url[s->type]);
		size_t n = strlen(s->url);
		while (n > 0 && s->url[n - 1] == '/')
			s->url[--n] = '\0';
		if (!fsrc_interval_ok(s->type, F.iv))
			die(2, "source %s: %s has no %d s bars", s->name, fsrc_type_name(s->type),
			    F.iv);
		if (fsrc_needs_key(s->type)) {
			if (!s->keyname[0])
				die(2,
				    "source %s: %s needs key=NAME (an environment variable or "
				    "credential holding the key)",
				    s->name, fsrc_type_name(s->type));
			int rc = load_key(s->keyname, s->key, sizeof s->key);
			if (rc == -ENOENT)
				die(2, "source %s: no key: set $%s or the credential %s", s->name,
				    s->keyname, s->keyname);
			if (rc < 0)
				die(2, "source %s: the key in %s is empty, too long or has blanks",
				    s->name, s->keyname);
		}
		if (rl_window_init(&s->win, s->rate, 60 * NS) < 0)
			die(1, "out of memory");
		rl_quota_init(&s->quota, s->daily);
		rl_breaker_init(&s->br, s->fail_threshold, s->cooldown_ns);
		resolve_tickers(s, i);
	}
	for (int i = 0; i < F.nsym; i++) {
		struct symbol *sy = &F.sym[i];
		for (int k = 0; k < F.nsrc; k++)
			rl_breaker_init(&sy->br[k], F.src[k].fail_threshold, F.src[k].cooldown_ns);
		/* a symbol that names its sources asks them in that order */
		if (sy->norder < 0) {
			sy->norder = F.nsrc;
			for (int k = 0; k < F.nsrc; k++)
				sy->order[k] = k;
			qsort(sy->order, (size_t)sy->norder, sizeof sy->order[0], by_priority);
		}
	}
}

/* ---- output ---- */

static void write_bar(struct symbol *sy, struct source *s, const struct fsrc_bar *b, uint32_t f)
{
	struct mdb_record r;
	uint8_t buf[MDB_REC_MAX_BYTES];
	record_init(&r, MDB_REC_BAR);
	snprintf(r.s, sizeof r.s, "%s", sy->s);
	snprintf(r.src, sizeof r.src, "%s", s->name);
	r.ts = b->ts;
	r.bar.iv = F.iv;
	r.bar.o = b->o;
	r.bar.h = b->h;
	r.bar.l = b->l;
	r.bar.c = b->c;
	r.bar.v = b->v;
	r.bar.n = b->n;
	r.bar.f = f;
	int len = record_encode(&r, buf, sizeof buf);
	if (len < 0) {
		counter_add(F.c_err, 1);
		logmsg(LOG_WARNING, "%s: cannot encode a bar: %s", sy->s, strerror(-len));
		return;
	}
	struct mdb_msg m = {.type = MDB_REC_BAR, .len = (uint32_t)len, .data = buf};
	int rc;
	/* a held-back output ring is waited on in slices, so a stop is seen */
	while ((rc = outputs_write(F.out, &m)) == -EINTR || rc == -ETIMEDOUT)
		if (cli_stopping())
			return;
	if (rc == -EPIPE) {
		F.stop = true;
		return;
	}
	if (rc < 0) {
		counter_add(F.c_err, 1);
		logmsg(LOG_WARNING, "write: %s", strerror(-rc));
		return;
	}
	counter_add(F.c_out, 1);
	counter_add(s->c_bars, 1);
}

static bool same_values(const struct fsrc_bar *a, const struct fsrc_bar *b)
{
	/* NaN volume equals NaN volume: absent stays absent */
	return a->o == b->o && a->h == b->h && a->l == b->l && a->c == b->c && a->n == b->n &&
	       (a->v == b->v || (isnan(a->v) && isnan(b->v)));
}

/* Write what is new in F.res for sy: bars after the last one written, and
 * the last one again when its values changed or it became final. In
 * backfill only final bars inside [from, to) are written. A bar is final
 * when it had ended before the request was sent (sent_ns): one that ended
 * while the answer was on its way may hold forming values. */
static void emit(struct symbol *sy, struct source *s, int64_t from, int64_t to, int64_t sent_ns,
		 bool backfill)
{
	int64_t ivns = (int64_t)F.iv * NS;
	for (int i = 0; i < F.res.n && !F.stop; i++) {
		const struct fsrc_bar *b = &F.res.bar[i];
		bool final = b->ts + ivns <= sent_ns;
		if (b->ts < from || b->ts >= to || (backfill && !final))
			continue;
		uint32_t f = final ? MDB_F_FINAL : 0;
		if (sy->have_last && b->ts < sy->last.ts)
			continue;
		if (sy->have_last && b->ts == sy->last.ts) {
			bool changed = !same_values(b, &sy->last);
			if (!changed && (final == sy->last_final || sy->last_final))
				continue;
			if (changed && sy->last_final)
				f |= MDB_F_REVISED;
		}
		write_bar(sy, s, b, f);
		sy->last = *b;
		sy->last_final = final;
		sy->have_last = true;
		if (backfill)
			F.bf_bars++;
	}
}

/* ---- transfers ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t add = size * n;
	if (x->len + add > FETCH_BODY_MAX) {
		x->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (x->len + add + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 64 * 1024;
		while (cap < x->len + add + 1)
			cap *= 2;
		char *nb = realloc(x->body, cap);
		if (!nb)
			return 0;
		x->body = nb;
		x->cap = cap;
	}
	memcpy(x->body + x->len, p, add);
	x->len += add;
	return add;
}

static void set_breaker_counter(struct source *s)
{
	counter_set(s->c_state, (uint64_t)s->br.state);
}

static void breaker_changed(struct source *s, enum rl_state was)
{
	set_breaker_counter(s);
	if (was != s->br.state)
		logmsg(s->br.state == RL_OPEN ? LOG_WARNING : LOG_INFO,
		       "source %s: circuit breaker %s -> %s", s->name, rl_state_name(was),
		       rl_state_name(s->br.state));
}

/* A change of sy's own breaker at source s, logged as the source's are. */
static void sym_breaker_changed(struct symbol *sy, struct source *s, enum rl_state was)
{
	enum rl_state now = sy->br[s - F.src].state;
	if (was != now)
		logmsg(now == RL_OPEN ? LOG_WARNING : LOG_INFO,
		       "source %s: %s: symbol breaker %s -> %s", s->name, sy->s, rl_state_name(was),
		       rl_state_name(now));
}

enum pick { PICK_SENT, PICK_WAIT, PICK_NONE };

/* The range a request for sy asks: live, from the last bar (itself if it
 * is still forming); backfill, the next chunk. */
static void range_for(struct symbol *sy, struct source *s, int64_t *from, int64_t *to,
		      int32_t *local_off)
{
	*local_off = 0;
	int64_t ivns = (int64_t)F.iv * NS, now = wall_ns();
	if (F.backfill_ns) {
		*from = sy->bf_from;
		int64_t end = sy->bf_from + s->chunk_ns;
		/* never across a month: Alpha Vantage serves one per request, a
		 * month of its zone's local time; the other APIs' chunks end at
		 * UTC month starts */
		int32_t off = 0;
		if (s->type == FSRC_ALPHAVANTAGE) {
			int err;
			const mdb_tz *z = tzcache_get(F.zones, fsrc_default_zone(s->type), &err);
			off = z ? tz_offset_at(z, sy->bf_from / NS) : 0;
		}
		time_t t = (time_t)(sy->bf_from / NS + off);
		struct tm tm;
		gmtime_r(&t, &tm);
		tm.tm_mday = 1;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_mon++;
		int64_t month_end = (int64_t)timegm(&tm);
		if (s->type == FSRC_ALPHAVANTAGE) {
			int err;
			const mdb_tz *z = tzcache_get(F.zones, fsrc_default_zone(s->type), &err);
			if (z)
				month_end = tz_local_to_utc(z, month_end);
		}
		month_end *= NS;
		if (end > month_end)
			end = month_end;
		if (end > sy->bf_end)
			end = sy->bf_end;
		*to = end;
		*local_off = off;
		return;
	}
	if (sy->have_last)
		*from = sy->last_final ? sy->last.ts + ivns : sy->last.ts;
	else
		*from = (now - F.lookback_ns) / ivns * ivns;
	*to = (now / ivns + 1) * ivns; /* the bar forming now included */
}

static struct xfer *free_xfer(void)
{
	for (int i = 0; i < F.nxf; i++)
		if (!F.xf[i].used)
			return &F.xf[i];
	return NULL;
}

static bool start(struct symbol *sy, int si, int64_t now)
{
	struct source *s = &F.src[si];
	struct xfer *x = free_xfer();
	if (!x)
		return false;
	int32_t off;
	range_for(sy, s, &x->from, &x->to, &off);
	struct fsrc_req rq = {.base = s->url,
			      .ticker = sy->ticker[si],
			      .iv = F.iv,
			      .key = s->key[0] ? s->key : NULL,
			      .from_ns = x->from,
			      .to_ns = x->to,
			      .full = F.backfill_ns != 0,
			      .local_off = off};
	if (fsrc_url(s->type, &rq, x->url, sizeof x->url) < 0) {
		logmsg(LOG_WARNING, "source %s: %s: cannot make a request URL (ticker too long?)",
		       s->name, sy->s);
		return false;
	}
	/* the tokens are spent only now, when the request really goes */
	rl_window_take(&s->win, now);
	rl_quota_take(&s->quota, wall_ns());
	curl_easy_setopt(x->h, CURLOPT_URL, x->url);
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, (long)(s->timeout_ns / 1000000));
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(s->timeout_ns / 1000000 < 5000 ? s->timeout_ns / 1000000 : 5000));
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	x->len = 0;
	x->too_big = false;
	x->sent_ns = wall_ns();
	x->sy = sy;
	x->src = si;
	CURLMcode mc = curl_multi_add_handle(F.multi, x->h);
	if (mc != CURLM_OK) {
		logmsg(LOG_WARNING, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
		return false;
	}
	x->used = true;
	sy->busy = true;
	s->inflight++;
	counter_add(s->c_req, 1);
	counter_add(F.c_req, 1);
	if (F.backfill_ns)
		F.bf_req++;
	return true;
}

/* Ask sy's best available source. */
static enum pick dispatch_one(struct symbol *sy, int64_t now)
{
	for (int k = 0; k < sy->norder; k++) {
		int si = sy->order[k];
		struct source *s = &F.src[si];
		if (sy->tried & (1u << si))
			continue;
		if (s->paused_until > now || rl_window_wait(&s->win, now) > 0 ||
		    rl_quota_left(&s->quota, wall_ns()) == 0)
			continue; /* no budget: the next source */
		if (s->br.state == RL_OPEN && now - s->br.opened_at < s->br.cooldown_ns)
			continue;
		if (s->br.state == RL_HALF_OPEN && s->br.probing)
			continue;
		/* this symbol set aside at this source (it does not know it) */
		struct rl_breaker *sb = &sy->br[si];
		if (sb->state == RL_OPEN && now - sb->opened_at < sb->cooldown_ns)
			continue;
		if (s->inflight >= s->concurrency)
			return PICK_WAIT; /* healthy, with budget: wait for a slot */
		enum rl_state was = s->br.state, sym_was = sb->state;
		if (!rl_breaker_allow(&s->br, now))
			continue;
		breaker_changed(s, was);
		rl_breaker_allow(sb, now); /* open past its cool-down: half-open */
		sym_breaker_changed(sy, s, sym_was);
		if (start(sy, si, now))
			return PICK_SENT;
		if (s->br.state == RL_HALF_OPEN)
			s->br.probing = false; /* the probe never went */
		sb->probing = false;
		return PICK_WAIT;
	}
	return PICK_NONE;
}

static void dispatch(int64_t now)
{
	for (int n = 0; n < F.nsym && !F.stop; n++) {
		struct symbol *sy = &F.sym[(F.rr + n) % F.nsym];
		if (!sy->due || sy->busy || now < sy->bf_retry_at)
			continue;
		enum pick p = dispatch_one(sy, now);
		if (p == PICK_NONE && !F.backfill_ns) {
			/* every source failed or has no budget: next cycle */
			sy->due = false;
			counter_add(F.c_skipped, 1);
		} else if (p == PICK_NONE && sy->tried) {
			/* backfill: all failed this round; start a new round
			 * a cadence later, give the chunk up after a few */
			sy->tried = 0;
			sy->bf_retry_at = now + F.cadence_ns;
			if (++sy->bf_rounds >= FETCH_BACKFILL_ROUNDS) {
				logmsg(LOG_ERR,
				       "%s: backfill chunk at %lld s failed on every "
				       "source; skipped",
				       sy->s, (long long)(sy->bf_from / NS));
				F.bf_failed++;
				sy->bf_rounds = 0;
				sy->tried = 0;
				sy->bf_from += F.src[sy->order[0]].chunk_ns;
				if (sy->bf_from >= sy->bf_end)
					sy->bf_done = true, sy->due = false;
			}
		}
	}
	F.rr = (F.rr + 1) % F.nsym;
}

static void finish(struct xfer *x, CURLcode code)
{
	struct symbol *sy = x->sy;
	struct source *s = &F.src[x->src];
	int64_t now = mono_ns();
	curl_multi_remove_handle(F.multi, x->h);
	x->used = false;
	sy->busy = false;
	s->inflight--;
	long http = 0;
	F.res.symbol_only = 0;
	if (code == CURLE_OK) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &http);
		if (fsrc_parse(s->type, http, x->body ? x->body : "", x->len, F.iv, F.zones,
			       &F.res) < 0)
			die(1, "out of memory");
	} else if (code == CURLE_OPERATION_TIMEDOUT) {
		/* a source that hangs, before or in the middle of its body: the
		 * transfer is abandoned and what came of the body is dropped */
		F.res.n = 0;
		F.res.status = FSRC_ERROR;
		counter_add(F.c_timeouts, 1);
		snprintf(F.res.why, sizeof F.res.why,
			 "timed out after %lld ms with %zu bytes of the body; transfer abandoned",
			 (long long)(s->timeout_ns / 1000000), x->len);
	} else {
		F.res.n = 0;
		F.res.status = FSRC_ERROR;
		/* curl's message for a code names no URL, so no key */
		snprintf(F.res.why, sizeof F.res.why, "%s",
			 x->too_big ? "answer too large" : curl_easy_strerror(code));
	}
	struct rl_breaker *sb = &sy->br[x->src];
	if (F.res.dropped) {
		counter_add(F.c_bad, (uint64_t)F.res.dropped);
		logmsg(LOG_WARNING, "source %s: %s: %d inconsistent bars dropped", s->name, sy->s,
		       F.res.dropped);
	}
	switch (F.res.status) {
	case FSRC_OK:
	case FSRC_NODATA:
		breaker_changed(s, rl_breaker_success(&s->br));
		sym_breaker_changed(sy, s, rl_breaker_success(sb));
		emit(sy, s, x->from, x->to, x->sent_ns, F.backfill_ns != 0);
		sy->tried = 0;
		sy->due = false;
		if (F.backfill_ns) {
			F.bf_done_ns += x->to - x->from;
			sy->bf_from = x->to;
			sy->bf_rounds = 0;
			if (sy->bf_from >= sy->bf_end)
				sy->bf_done = true;
			else
				sy->due = true;
		}
		break;
	case FSRC_RATELIMIT: {
		counter_add(s->c_rl, 1);
		counter_add(F.c_rl, 1);
		curl_off_t ra = 0;
		curl_easy_getinfo(x->h, CURLINFO_RETRY_AFTER, &ra);
		int64_t pause = ra > 0 && ra < 86400 ? (int64_t)ra * NS : s->pause_ns;
		s->paused_until = now + pause;
		if (s->br.state == RL_HALF_OPEN)
			s->br.probing = false; /* not an answer about health */
		sb->probing = false;
		logmsg(LOG_WARNING, "source %s: rate limited (%s); paused for %.0f s", s->name,
		       F.res.why, (double)pause / NS);
		sy->tried |= 1u << x->src;
		break;
	}
	case FSRC_ERROR:
		if (F.res.symbol_only) {
			/* about this symbol only: it goes to its next source, the
			 * source's breaker is not told (the probe slot of a
			 * half-open source is freed for another symbol) */
			counter_add(s->c_symerr, 1);
			counter_add(F.c_symerr, 1);
			logmsg(LOG_WARNING, "source %s: %s: %s (this symbol only)", s->name, sy->s,
			       F.res.why);
			if (s->br.state == RL_HALF_OPEN)
				s->br.probing = false;
			sym_breaker_changed(sy, s, rl_breaker_failure(sb, now));
			sy->tried |= 1u << x->src;
			break;
		}
		sb->probing = false;
		counter_add(s->c_err, 1);
		counter_add(F.c_err, 1);
		logmsg(LOG_WARNING, "source %s: %s: %s", s->name, sy->s, F.res.why);
		breaker_changed(s, rl_breaker_failure(&s->br, now));
		sy->tried |= 1u << x->src;
		break;
	}
}

/* Finish every transfer curl has done; returns how many. */
static int drain(void)
{
	CURLMsg *msg;
	int left, n = 0;
	while ((msg = curl_multi_info_read(F.multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			finish(x, msg->data.result);
		n++;
	}
	return n;
}

static void progress(bool last)
{
	int64_t now = mono_ns();
	if (!last && now - F.bf_last_print < (F.tty ? NS / 10 : NS))
		return;
	F.bf_last_print = now;
	double pct = F.bf_total_ns ? 100.0 * (double)F.bf_done_ns / (double)F.bf_total_ns : 100;
	fprintf(stderr, "%sbackfill: %d symbols, %llu requests, %llu bars, %.0f%%%s%s",
		F.tty ? "\r" : "", F.nsym, (unsigned long long)F.bf_req,
		(unsigned long long)F.bf_bars, pct, last ? ", done" : "",
		F.tty && !last ? "" : "\n");
	fflush(stderr);
}

static bool backfill_done(void)
{
	for (int i = 0; i < F.nsym; i++)
		if (!F.sym[i].bf_done || F.sym[i].busy)
			return false;
	return true;
}

static void make_counters(mdb_counters *cnt)
{
	F.c_out = counter_get(cnt, "out");
	F.c_req = counter_get(cnt, "requests");
	F.c_err = counter_get(cnt, "errors");
	F.c_rl = counter_get(cnt, "rate_limited");
	F.c_bad = counter_get(cnt, "bad_bars");
	F.c_cycles = counter_get(cnt, "cycles");
	F.c_late = counter_get(cnt, "cycles_late");
	F.c_skipped = counter_get(cnt, "skipped");
	F.c_symerr = counter_get(cnt, "symbol_errors");
	F.c_timeouts = counter_get(cnt, "timeouts");
	F.c_ontime = counter_get(cnt, "cycles_on_time");
	for (int i = 0; i < F.nsrc; i++) {
		struct source *s = &F.src[i];
		char n[COUNTER_NAME_MAX];
		snprintf(n, sizeof n, "%s.requests", s->name);
		s->c_req = counter_get(cnt, n);
		snprintf(n, sizeof n, "%s.errors", s->name);
		s->c_err = counter_get(cnt, n);
		snprintf(n, sizeof n, "%s.rate_limited", s->name);
		s->c_rl = counter_get(cnt, n);
		snprintf(n, sizeof n, "%s.breaker", s->name);
		s->c_state = counter_get(cnt, n);
		snprintf(n, sizeof n, "%s.bars", s->name);
		s->c_bars = counter_get(cnt, n);
		snprintf(n, sizeof n, "%s.symbol_errors", s->name);
		s->c_symerr = counter_get(cnt, n);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    CLI_STAGE_LONGOPTS,
	    {"config", required_argument, NULL, 'c'},
	    {"cadence", required_argument, NULL, OPT_CADENCE},
	    {"lookback", required_argument, NULL, OPT_LOOKBACK},
	    {"backfill", required_argument, NULL, OPT_BACKFILL},
	    {"base-url", required_argument, NULL, OPT_BASE_URL},
	    {NULL, 0, NULL, 0},
	};
	struct mdb_cli cli = CLI_INIT;
	struct ep_opts eo;
	ep_opts_default(&eo);
	log_init(argv[0]);
	const char *config = NULL;
	char *base_urls[FETCH_MAX_SOURCES];
	int nbase = 0;
	F.cadence_ns = NS;
	F.lookback_ns = 600 * NS;
	int opt;
	long long d;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS "c:", longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "%s", cli.err);
		if (rc > 0)
			continue;
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case OPT_CADENCE:
			if (cli_parse_duration(optarg, &d) < 0 || d < NS / 100)
				die(2, "--cadence %s: expected a duration of at least 10ms",
				    optarg);
			F.cadence_ns = d;
			break;
		case OPT_LOOKBACK:
			if (cli_parse_duration(optarg, &d) < 0)
				die(2, "--lookback %s: expected a duration", optarg);
			F.lookback_ns = d;
			break;
		case OPT_BACKFILL:
			if (cli_parse_duration(optarg, &d) < 0 || d < 60 * NS)
				die(2,
				    "--backfill %s: expected a duration of at least 1m (e.g. 90d)",
				    optarg);
			F.backfill_ns = d;
			break;
		case OPT_BASE_URL:
			if (nbase == FETCH_MAX_SOURCES)
				die(2, "too many --base-url");
			base_urls[nbase++] = optarg;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-fetch", usage);
	if (argc > 0 || !config)
		usage(stderr);
	if (cli.nin > 0)
		die(2, "mdb-fetch reads HTTP APIs, not endpoints: no -i");
	cli_apply(&cli, &eo, "mdb-fetch");
	eo.publish_timeout_ns = 250000000; /* held back: look at the stop flag this often */
	if (cli_check_endpoints(&cli, NULL) < 0)
		die(2, "%s", cli.err);
	load_config(config);
	finish_config(base_urls, nbase);

	/* init */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die(1, "curl_global_init failed");
	char msg[512];
	int err = 0;
	cli_catch_signals();
	int stop_fd = cli_stop_fd();
	if (stop_fd < 0)
		die(1, "cannot make the stop eventfd");
	F.zones = tzcache_new();
	F.multi = curl_multi_init();
	if (!F.zones || !F.multi)
		die(1, "out of memory");
	for (int i = 0; i < F.nsrc; i++)
		F.nxf += F.src[i].concurrency;
	curl_multi_setopt(F.multi, CURLMOPT_MAXCONNECTS, (long)F.nxf);
	F.xf = calloc((size_t)F.nxf, sizeof *F.xf);
	if (!F.xf)
		die(1, "out of memory");
	for (int i = 0; i < F.nxf; i++) {
		CURL *h = F.xf[i].h = curl_easy_init();
		if (!h)
			die(1, "curl_easy_init failed");
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &F.xf[i]);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(h, CURLOPT_USERAGENT, "mdb-fetch/" MDB_VERSION);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	}
	mdb_counters *cnt = counters_open("mdb-fetch", eo.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	make_counters(cnt);
	F.out = outputs_open(cli.out, cli.nout, &eo, &err, msg, sizeof msg);
	if (!F.out)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		die(1, "timerfd_create: %s", strerror(errno));
	struct itimerspec its = {
	    .it_interval = {F.cadence_ns / NS, F.cadence_ns % NS},
	    .it_value = {F.cadence_ns / NS, F.cadence_ns % NS},
	};
	timerfd_settime(tfd, 0, &its, NULL);
	int64_t ivns = (int64_t)F.iv * NS;
	if (F.backfill_ns) {
		int64_t now = wall_ns(), start_ns = (now - F.backfill_ns) / ivns * ivns;
		for (int i = 0; i < F.nsym; i++) {
			F.sym[i].bf_from = start_ns;
			F.sym[i].bf_end = now / ivns * ivns; /* the forming bar is not final */
			F.sym[i].due = F.sym[i].bf_from < F.sym[i].bf_end;
			F.sym[i].bf_done = !F.sym[i].due;
		}
		F.bf_total_ns = (int64_t)F.nsym * (now / ivns * ivns - start_ns);
		F.tty = isatty(STDERR_FILENO);
	} else {
		for (int i = 0; i < F.nsym; i++)
			F.sym[i].due = true;
	}
	for (int i = 0; i < F.nsrc; i++)
		logmsg(LOG_INFO, "source %s: %s, priority %d, %u/min, %llu/day, %d at once",
		       F.src[i].name, fsrc_type_name(F.src[i].type), F.src[i].priority,
		       F.src[i].rate, (unsigned long long)F.src[i].daily, F.src[i].concurrency);
	notify_ready(F.backfill_ns ? "backfilling" : NULL);

	/* loop */
	int status = 0;
	while (!cli_stopping() && !F.stop) {
		notify_watchdog();
		/* until a round finishes no transfer: what one frees is used at
		 * once, not at the next wake-up (a failed symbol's next source in
		 * this cycle, a freed slot's waiting symbol, a backfill's next
		 * chunk), and no finished transfer waits unread through the poll */
		int running, done;
		do {
			dispatch(mono_ns());
			curl_multi_perform(F.multi, &running);
			done = drain();
		} while (done && !F.stop && !cli_stopping());
		if (F.backfill_ns) {
			progress(false);
			if (backfill_done())
				break;
		}
		outputs_flush(F.out);
		struct curl_waitfd extra[2] = {{.fd = stop_fd, .events = CURL_WAIT_POLLIN},
					       {.fd = tfd, .events = CURL_WAIT_POLLIN}};
		/* curl shortens the wait to its own next timeout; the timerfd
		 * ends it at the next tick, the eventfd at a stop signal */
		int64_t wait = notify_wait_ns(60 * NS);
		CURLMcode mc = curl_multi_poll(F.multi, extra, 2, (int)(wait / 1000000), NULL);
		if (mc != CURLM_OK && mc != CURLM_UNRECOVERABLE_POLL) {
			logmsg(LOG_ERR, "curl_multi_poll: %s", curl_multi_strerror(mc));
			status = 1;
			break;
		}
		uint64_t ticks;
		if (read(tfd, &ticks, sizeof ticks) == (ssize_t)sizeof ticks && !F.backfill_ns) {
			counter_add(F.c_cycles, 1);
			bool late = false;
			for (int i = 0; i < F.nsym; i++) {
				struct symbol *sy = &F.sym[i];
				if (sy->busy || sy->due) {
					counter_add(F.c_late,
						    1); /* last cycle's answer still out */
					late = true;
				}
				if (!sy->busy) {
					sy->due = true;
					sy->tried = 0;
				}
			}
			/* every symbol answered (or skipped) before this tick */
			if (!late)
				counter_add(F.c_ontime, 1);
		}
	}
	if (F.backfill_ns) {
		progress(true);
		if (F.bf_failed || (!backfill_done() && !cli_stopping()))
			status = 1;
	}

	/* finish */
	notify_stopping();
	outputs_flush(F.out);
	for (int i = 0; i < F.nxf; i++) {
		if (F.xf[i].used)
			curl_multi_remove_handle(F.multi, F.xf[i].h);
		curl_easy_cleanup(F.xf[i].h);
		free(F.xf[i].body);
	}
	free(F.xf);
	curl_multi_cleanup(F.multi);
	curl_global_cleanup();
	for (int i = 0; i < F.nsrc; i++) {
		explicit_bzero(F.src[i].key, sizeof F.src[i].key);
		rl_window_fini(&F.src[i].win);
		symmap_free(&F.src[i].map);
		free((void *)F.src[i].mapfile);
	}
	fsrc_result_free(&F.res);
	tzcache_free(&F.zones);
	free(F.sym);
	close(tfd);
	outputs_close(&F.out);
	counters_close(&cnt);
	return status;
}
