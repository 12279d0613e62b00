/* mdb-lvc - print the last-value cache kept by mdb-feature.
 *
 * Maps the cache read-only and copies each entry under its seqlock: it never
 * disturbs the writer and makes no syscall per entry.
 */
#include "cli.h"
#include "log.h"
#include "lvc.h"
#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILTERS 16

enum { OPT_TEXT = CLI_OPT_FIRST_TOOL, OPT_STAT };

struct view {
	bool text, stat;
	const char *syms[MAX_FILTERS];
	int nsyms;
	int32_t iv; /* 0: every interval */
	mdb_codec *codec;
};

static _Noreturn void usage(FILE *out)
{
	fprintf(out,
		"usage: mdb-lvc [-s SYM]... [-I IV] [--text] [--stat] [-w SECONDS] [NAME]\n"
		"Print the last-value cache NAME (mdb-feature --lvc; default mdb): per (symbol,\n"
		"interval) the latest bar and features, as JSON lines.\n"
		"  -s, --symbol SYM        only this symbol (repeatable)\n"
		"  -I, --interval IV       only this interval (e.g. 60, 1m)\n"
		"      --text              readable lines instead of JSON\n"
		"      --stat              the cache's header: capacity, entries, writer\n"
		"  -w, --watch SECONDS     print again every SECONDS until interrupted\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n");
	exit(out == stdout ? 0 : 2);
}

static int cmp_item(const void *a, const void *b)
{
	const struct lvc_item *x = a, *y = b;
	int d = strcmp(x->s, y->s);
	return d ? d : (x->iv > y->iv) - (x->iv < y->iv);
}

static bool wanted(const struct view *w, const struct lvc_item *it)
{
	if (w->iv && it->iv != w->iv)
		return false;
	if (!w->nsyms)
		return true;
	for (int i = 0; i < w->nsyms; i++)
		if (strcmp(w->syms[i], it->s) == 0)
			return true;
	return false;
}

/* Render the entry's bar or features as a record (JSON or text) into out. */
static int render(const struct view *w, const struct lvc_item *it, enum mdb_rtype t, char *out,
		  size_t cap)
{
	static struct mdb_record r;
	uint8_t buf[MDB_REC_MAX_BYTES];
	const char *why;
	record_init(&r, t);
	memcpy(r.s, it->s, sizeof r.s);
	r.ts = it->v.ts;
	if (t == MDB_REC_BAR) {
		r.bar = (struct mdb_bar){.iv = it->iv,
					 .o = it->v.o,
					 .h = it->v.h,
					 .l = it->v.l,
					 .c = it->v.c,
					 .v = it->v.v,
					 .n = it->v.n,
					 .bv = it->v.bv,
					 .av = it->v.av,
					 .f = (uint32_t)it->v.f};
	} else {
		const double *f = it->v.feat;
		r.feat = (struct mdb_feat){.iv = it->iv,
					   .rsi = f[LVC_RSI],
					   .ema12 = f[LVC_EMA12],
					   .ema26 = f[LVC_EMA26],
					   .bbm = f[LVC_BBM],
					   .bbu = f[LVC_BBU],
					   .bbl = f[LVC_BBL],
					   .atr = f[LVC_ATR],
					   .vwap = f[LVC_VWAP],
					   .vma = f[LVC_VMA],
					   .macd = f[LVC_MACD],
					   .macds = f[LVC_MACDS],
					   .macdh = f[LVC_MACDH],
					   .mom = f[LVC_MOM],
					   .f = (uint32_t)it->v.f};
	}
	int n = record_encode(&r, buf, sizeof buf);
	if (n < 0)
		return n;
	return w->text ? record_to_text(w->codec, buf, (size_t)n, out, cap, &why)
		       : record_to_json(w->codec, buf, (size_t)n, out, cap, &why);
}

static int print_once(const struct view *w, mdb_lvc *c)
{
	if (w->stat) {
		struct lvc_info in;
		lvc_info(c, &in);
		printf("capacity %u entries %u updates %llu writer %d %s\n", in.capacity, in.used,
		       (unsigned long long)in.updates, (int)in.writer_pid,
		       in.writer_alive ? "alive" : "gone");
		return 0;
	}
	uint32_t cap = lvc_capacity(c);
	struct lvc_item *items = malloc(sizeof *items * cap);
	if (!items)
		die(1, "out of memory");
	int n = 0, stuck = 0;
	for (uint32_t i = 0; i < cap; i++) {
		int rc = lvc_read(c, (int)i, &items[n]);
		if (rc == -EAGAIN)
			stuck++;
		if (rc == 0 && wanted(w, &items[n]))
			n++;
	}
	qsort(items, n, sizeof *items, cmp_item);
	char bar[4096], feat[4096];
	for (int i = 0; i < n; i++) {
		const struct lvc_item *it = &items[i];
		if (render(w, it, MDB_REC_BAR, bar, sizeof bar) < 0 ||
		    render(w, it, MDB_REC_FEAT, feat, sizeof feat) < 0) {
			logmsg(LOG_WARNING, "%s/%d: cannot render", it->s, it->iv);
			continue;
		}
		if (w->text)
			printf("%s/%ds seq %llu\n  %s\n  %s\n", it->s, it->iv,
			       (unsigned long long)it->seq, bar, feat);
		else
			/* the symbol is inside bar and feat, escaped there */
			printf("{\"seq\":%llu,\"updated\":%lld,\"bar\":%s,\"feat\":%s}\n",
			       (unsigned long long)it->seq, (long long)it->v.updated_ns, bar, feat);
	}
	free(items);
	if (stuck)
		logmsg(LOG_WARNING, "%d entries left half-written by a writer that died", stuck);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"symbol", required_argument, NULL, 's'}, {"interval", required_argument, NULL, 'I'},
	    {"text", no_argument, NULL, OPT_TEXT},    {"stat", no_argument, NULL, OPT_STAT},
	    {"watch", required_argument, NULL, 'w'},  {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	struct view w = {0};
	struct mdb_cli cli = {0};
	double watch = 0;
	long long ns;
	char *end;
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, "s:I:w:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (w.nsyms == MAX_FILTERS)
				die(2, "-s: at most %d symbols", MAX_FILTERS);
			w.syms[w.nsyms++] = optarg;
			break;
		case 'I':
			if (cli_parse_duration(optarg, &ns) < 0 || ns < 1000000000LL ||
			    ns % 1000000000LL || ns / 1000000000LL > INT32_MAX)
				die(2, "-I: not a whole number of seconds: '%s'", optarg);
			w.iv = (int32_t)(ns / 1000000000LL);
			break;
		case OPT_TEXT:
			w.text = true;
			break;
		case OPT_STAT:
			w.stat = true;
			break;
		case 'w':
			errno = 0;
			watch = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(watch > 0) || watch > 86400)
				die(2, "-w: not a number of seconds: '%s'", optarg);
			break;
		case 'h':
		case 'V':
			cli_option(&cli, opt, NULL);
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-lvc", usage);
	if (argc > 1)
		usage(stderr);
	const char *name = argc ? argv[0] : "mdb";
	int err;
	mdb_lvc *c = lvc_open(name, false, &err);
	if (!c)
		die(err == -ENOENT || err == -EINVAL || err == -EPROTO ? 2 : 1, "%s: %s", name,
		    err == -EPROTO ? "not a last-value cache" : strerror(-err));
	if (!(w.codec = codec_new()))
		die(1, "out of memory");
	cli_catch_signals();
	int status = 0;
	do {
		if (print_once(&w, c) < 0) {
			status = 1;
			break;
		}
		if (watch > 0) {
			struct timespec ts = {(time_t)watch, (long)((watch - (time_t)watch) * 1e9)};
			nanosleep(&ts, NULL);
		}
	} while (watch > 0 && !cli_stopping());
	codec_free(&w.codec);
	lvc_close(&c);
	return status;
}
