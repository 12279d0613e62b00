/* cli.c - shared option handling. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "endpoint.h"
#include "shm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct mdb_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct mdb_cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int cli_option(struct mdb_cli *c, int opt, const char *arg)
{
	switch (opt) {
	case 'i':
		if (c->nin == CLI_MAX_ENDPOINTS)
			goto too_many;
		c->in[c->nin++] = arg;
		return 1;
	case 'o':
		if (c->nout == CLI_MAX_ENDPOINTS)
			goto too_many;
		c->out[c->nout++] = arg;
		return 1;
	case CLI_OPT_NAME:
		c->name = arg;
		return 1;
	case CLI_OPT_JSON:
		c->json = true;
		return 1;
	case 'h':
		c->help = true;
		return 1;
	case 'V':
		c->version = true;
		return 1;
	case CLI_OPT_FROM:
		if (strcmp(arg, "start") == 0)
			c->from = RING_FROM_START;
		else if (strcmp(arg, "end") == 0)
			c->from = RING_FROM_END;
		else
			return fail(c, "--from takes start or end, not '%s'", arg);
		return 1;
	case CLI_OPT_RING_SIZE:
		if (cli_parse_size(arg, &c->ring_size) < 0 || c->ring_size < RING_MIN_CAPACITY ||
		    (c->ring_size & (c->ring_size - 1)))
			return fail(c, "--ring-size: not a power of two of at least %u: '%s'",
				    RING_MIN_CAPACITY, arg);
		return 1;
	default:
		return 0;
	}
too_many:
	snprintf(c->err, sizeof c->err, "at most %d inputs and %d outputs", CLI_MAX_ENDPOINTS,
		 CLI_MAX_ENDPOINTS);
	return -E2BIG;
}

void cli_apply(const struct mdb_cli *c, struct ep_opts *eo, const char *default_name)
{
	eo->name = c->name ? c->name : default_name;
	eo->json_in = eo->json_out = c->json;
	if (c->from >= 0)
		eo->from = (enum ring_from)c->from;
	if (c->ring_size)
		eo->ring_capacity = c->ring_size;
}

int cli_check_endpoints(struct mdb_cli *c, const char *extra)
{
	const char *why;
	for (int i = 0; i < c->nin + c->nout + 1; i++) {
		const char *uri = i < c->nin		 ? c->in[i]
				  : i < c->nin + c->nout ? c->out[i - c->nin]
							 : extra;
		if (uri && ep_parse_check(uri, &why) < 0)
			return fail(c, "%s: %s", uri, why);
	}
	return 0;
}

void cli_print_version(const char *prog)
{
	printf("%s %s\n", prog, MDB_VERSION);
}

void cli_help_version(const struct mdb_cli *c, const char *prog, void (*usage)(FILE *))
{
	if (c->help)
		usage(stdout);
	if (c->version) {
		cli_print_version(prog);
		exit(0);
	}
}

int cli_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (shift && v > (~0ULL >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int cli_parse_duration(const char *s, long long *out_ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	/* !(v >= 0) also refuses "nan", whose conversion to long long below
	 * is undefined (found by fuzz_cli, issue 9) */
	if (errno || end == s || !(v >= 0))
		return -EINVAL;
	static const struct {
		const char *sfx;
		double mul;
	} units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6},   {"s", 1e9},
		     {"", 1e9}, {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].sfx) == 0) {
			double ns = v * units[i].mul;
			if (ns > 9.2e18)
				return -EINVAL;
			*out_ns = (long long)ns;
			return 0;
		}
	}
	return -EINVAL;
}

static volatile sig_atomic_t stopping;
static _Atomic uint32_t stop_word;
static int stop_fd = -1;

/* Only async-signal-safe steps: a flag, an atomic store, a futex wake and
 * an eventfd write. The loop does the work. */
static void on_stop(int sig)
{
	(void)sig;
	int saved = errno;
	stopping = 1;
	atomic_store_explicit(&stop_word, 1, memory_order_seq_cst);
	shm_futex_wake(&stop_word);
	if (stop_fd >= 0) {
		uint64_t one = 1;
		(void)!write(stop_fd, &one, sizeof one);
	}
	errno = saved;
}

_Atomic uint32_t *cli_stop_word(void)
{
	return &stop_word;
}

int cli_stop_fd(void)
{
	if (stop_fd < 0)
		stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return stop_fd;
}

void cli_catch_signals(void)
{
	cli_stop_fd();
	struct sigaction sa = {0};
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool cli_stopping(void)
{
	return stopping != 0;
}
