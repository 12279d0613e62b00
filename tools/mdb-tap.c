/* mdb-tap - print records from any endpoint, like tail(1).
 *
 * Joins rings as an observer, so it can never slow the pipeline: if it is
 * lapped it says so on stderr and resyncs to the newest record.
 */
#include "cli.h"
#include "endpoint.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_FROM = CLI_OPT_FIRST_TOOL,
	OPT_TEXT,
	OPT_RAW,
};

enum format { FMT_JSON, FMT_TEXT, FMT_RAW };

#define MAX_FILTERS 16

struct tap {
	enum format fmt;
	bool follow;
	long long last;	 /* --last N, -1: not given */
	long long count; /* stop after this many, -1: never */
	const char *from;
	bool types[MDB_REC_MAX];
	bool any_type;
	char syms[MAX_FILTERS][MDB_SYM_MAX];
	int nsyms;
};

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-tap [-f] [--from start|end|POS] [-n N] [-c N] [-t TYPE,...] [-s SYM,...]\n"
	    "               [--text | --raw] [--json] [--name NAME] [-i ENDPOINT]... "
	    "[ENDPOINT...]\n"
	    "Print records from endpoints (default: stdin) as JSON lines.\n"
	    "  -f, --follow            keep printing new records (default: stop when caught up)\n"
	    "      --from start|end|POS  where to start in a ring (default: start, or end with "
	    "-f)\n"
	    "  -n, --last N            start with the last N records of each ring\n"
	    "  -c, --count N           exit after printing N records\n"
	    "  -t, --type TYPE,...     only these types (tick, bar, feat, sig, rej)\n"
	    "  -s, --symbol SYM,...    only these symbols\n"
	    "      --text              a readable line per record\n"
	    "      --raw               ring position, type, length and a hex dump\n"
	    "  -i, --input ENDPOINT    read from ENDPOINT (repeatable; also as operands)\n"
	    "      --name NAME         observer name in rings (default mdb-tap.PID)\n"
	    "      --json              stdin carries JSON lines, not MessagePack\n"
	    "  -h, --help              show this help\n"
	    "  -V, --version           show the version\n"
	    "ENDPOINT is ring:NAME, -, zmq+tcp://HOST:PORT or zmq+ipc://PATH.\n");
	exit(out == stdout ? 0 : 2);
}

static void parse_types(struct tap *t, char *list)
{
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		enum mdb_rtype ty = record_type_parse(tok, strlen(tok));
		if (ty == MDB_REC_NONE)
			die(2, "-t: unknown record type '%s' (tick, bar, feat, sig, rej)", tok);
		t->types[ty] = true;
		t->any_type = true;
	}
}

static void parse_syms(struct tap *t, char *list)
{
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		if (t->nsyms == MAX_FILTERS)
			die(2, "-s: at most %d symbols", MAX_FILTERS);
		if (strlen(tok) >= MDB_SYM_MAX)
			die(2, "-s: symbol too long: '%s'", tok);
		strcpy(t->syms[t->nsyms++], tok);
	}
}

static long long parse_count(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < 0)
		die(2, "%s: not a count: '%s'", opt, s);
	return v;
}

static bool wanted(const struct tap *t, const struct mdb_msg *m)
{
	if (t->any_type && (m->type >= MDB_REC_MAX || !t->types[m->type]))
		return false;
	if (t->nsyms == 0)
		return true;
	char sym[MDB_SYM_MAX];
	const char *why;
	if (record_peek(m->data, m->len, sym, sizeof sym, &why) <= 0)
		return false;
	for (int i = 0; i < t->nsyms; i++)
		if (strcmp(sym, t->syms[i]) == 0)
			return true;
	return false;
}

static void hexdump(const struct mdb_msg *m)
{
	const char *tn = record_type_name(m->type);
	printf("@%llu %s len %u\n", (unsigned long long)m->pos, tn ? tn : "?", m->len);
	for (uint32_t i = 0; i < m->len; i += 16) {
		printf("  %04x ", i);
		for (uint32_t j = i; j < i + 16; j++)
			j < m->len ? printf(" %02x", m->data[j]) : printf("   ");
		printf("  ");
		for (uint32_t j = i; j < i + 16 && j < m->len; j++)
			putchar(m->data[j] >= 32 && m->data[j] < 127 ? m->data[j] : '.');
		putchar('\n');
	}
}

/* Position each ring input: --from POS, or the start of its last N records. */
static void position_rings(mdb_inputs *in, int n, const struct tap *t)
{
	char *end;
	for (int i = 0; i < n; i++) {
		mdb_ring_consumer *c = inputs_ring(in, i);
		if (!c)
			continue;
		if (t->from && strcmp(t->from, "start") && strcmp(t->from, "end")) {
			unsigned long long pos = strtoull(t->from, &end, 10);
			ring_seek(c, pos);
		}
		if (t->last < 0)
			continue;
		/* walk what is there, remembering the last N record positions */
		uint64_t *ring_pos = calloc(t->last + 1, sizeof *ring_pos);
		if (!ring_pos)
			die(1, "out of memory for --last %lld", t->last);
		uint64_t seen = 0, start = ring_consumer_position(c);
		struct ring_rec rec;
		int rc;
		while ((rc = ring_next(c, &rec)) != 0) {
			if (rc == RING_LAPPED) {
				seen = 0;
				continue;
			}
			ring_pos[seen++ % (t->last + 1)] = rec.pos;
		}
		if (t->last == 0)
			ring_seek(c, ring_consumer_position(c));
		else if (seen > (uint64_t)t->last)
			ring_seek(c, ring_pos[(seen - t->last) % (t->last + 1)]);
		else if (seen)
			ring_seek(c, ring_pos[0]);
		else
			ring_seek(c, start);
		free(ring_pos);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"follow", no_argument, NULL, 'f'},
	    {"from", required_argument, NULL, OPT_FROM},
	    {"last", required_argument, NULL, 'n'},
	    {"count", required_argument, NULL, 'c'},
	    {"type", required_argument, NULL, 't'},
	    {"symbol", required_argument, NULL, 's'},
	    {"text", no_argument, NULL, OPT_TEXT},
	    {"raw", no_argument, NULL, OPT_RAW},
	    {NULL, 0, NULL, 0},
	};
	struct mdb_cli cli = {0};
	struct tap t = {.fmt = FMT_JSON, .last = -1, .count = -1};
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS "fn:c:t:s:", longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "at most %d inputs", CLI_MAX_ENDPOINTS);
		if (rc > 0)
			continue;
		switch (opt) {
		case 'f':
			t.follow = true;
			break;
		case OPT_FROM:
			t.from = optarg;
			if (strcmp(optarg, "start") && strcmp(optarg, "end")) {
				char *end;
				(void)strtoull(optarg, &end, 10);
				if (*end || end == optarg || optarg[0] == '-')
					die(2, "--from takes start, end or a position, not '%s'",
					    optarg);
			}
			break;
		case 'n':
			t.last = parse_count("--last", optarg);
			break;
		case 'c':
			t.count = parse_count("--count", optarg);
			break;
		case 't':
			parse_types(&t, optarg);
			break;
		case 's':
			parse_syms(&t, optarg);
			break;
		case OPT_TEXT:
			t.fmt = FMT_TEXT;
			break;
		case OPT_RAW:
			t.fmt = FMT_RAW;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-tap", usage);
	if (cli.nout)
		die(2, "mdb-tap prints to stdout; use mdb-pipe to write to endpoints");
	for (int i = 0; i < argc; i++) {
		if (cli.nin == CLI_MAX_ENDPOINTS)
			die(2, "at most %d inputs", CLI_MAX_ENDPOINTS);
		cli.in[cli.nin++] = argv[i];
	}
	for (int i = 0; i < cli.nin; i++) {
		const char *why;
		if (ep_parse_check(cli.in[i], &why) < 0)
			die(2, "%s: %s", cli.in[i], why);
	}

	/* a ring is "caught up" when it has nothing more; stdin and ZeroMQ
	 * are read until they end */
	bool rings_only = cli.nin > 0;
	for (int i = 0; i < cli.nin; i++)
		rings_only &= strncmp(cli.in[i], "ring:", 5) == 0;
	bool stop_when_idle = !t.follow && rings_only;

	/* init: an observer, so we never hold a producer back */
	char name[64], msg[512];
	snprintf(name, sizeof name, "mdb-tap.%d", (int)getpid());
	struct ep_opts eo;
	ep_opts_default(&eo);
	eo.name = cli.name ? cli.name : name;
	eo.json_in = cli.json;
	eo.kind = RING_OBSERVER;
	eo.no_create = true;
	bool from_start = t.from ? strcmp(t.from, "end") != 0 : !t.follow || t.last >= 0;
	eo.from = from_start ? RING_FROM_START : RING_FROM_END;
	int err = 0;
	cli_catch_signals();
	mdb_inputs *in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	position_rings(in, cli.nin ? cli.nin : 1, &t);
	mdb_codec *codec = codec_new();
	static char line[1 << 16];

	/* loop */
	int status = 0;
	long long printed = 0;
	uint64_t laps = 0;
	struct mdb_msg m;
	while (!cli_stopping() && (t.count < 0 || printed < t.count)) {
		int rc = inputs_read(in, &m, 0);
		if (inputs_laps(in) != laps) {
			logmsg(LOG_WARNING,
			       "lapped by the producer %llu time(s): resynced to the newest record",
			       (unsigned long long)(inputs_laps(in) - laps));
			laps = inputs_laps(in);
		}
		if (rc == 0) {
			if (fflush(stdout) == EOF)
				break;
			if (stop_when_idle)
				break; /* caught up */
			rc = inputs_read(in, &m, -1);
		}
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc == -EPIPE)
			break;
		if (rc == -EBADMSG) {
			logmsg(LOG_WARNING, "bad record: %s", inputs_error(in));
			continue;
		}
		if (rc < 0) {
			logmsg(LOG_ERR, "read: %s", strerror(-rc));
			status = 1;
			break;
		}
		if (!wanted(&t, &m))
			continue;
		const char *why = "";
		int n = 0;
		switch (t.fmt) {
		case FMT_RAW:
			hexdump(&m);
			break;
		case FMT_JSON:
			n = record_to_json(codec, m.data, m.len, line, sizeof line, &why);
			break;
		case FMT_TEXT:
			n = record_to_text(codec, m.data, m.len, line, sizeof line, &why);
			break;
		}
		if (n < 0) {
			logmsg(LOG_WARNING, "cannot render record at %llu: %s",
			       (unsigned long long)m.pos, why);
			continue;
		}
		if (t.fmt != FMT_RAW && puts(line) == EOF)
			break;
		printed++;
	}

	/* finish */
	fflush(stdout);
	codec_free(&codec);
	inputs_close(&in);
	return status;
}
