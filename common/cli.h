/* cli.h - the options every tool shares: -i, -o, --name, --json, -h, -V.
 *
 * A tool puts CLI_SHORTOPTS and CLI_LONGOPTS into its own getopt_long tables
 * and passes every option to cli_option() first. */
#ifndef MDB_CLI_H
#define MDB_CLI_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_ENDPOINTS 16

enum {
	CLI_OPT_NAME = 0x1000,
	CLI_OPT_JSON,
	CLI_OPT_FROM,
	CLI_OPT_RING_SIZE,
	CLI_OPT_FIRST_TOOL = 0x1100, /* tools number their own long options from here */
};

#define CLI_SHORTOPTS "i:o:hV"
#define CLI_LONGOPTS                                                                               \
	{"input", required_argument, NULL, 'i'}, {"output", required_argument, NULL, 'o'},         \
	    {"name", required_argument, NULL, CLI_OPT_NAME},                                       \
	    {"json", no_argument, NULL, CLI_OPT_JSON}, {"help", no_argument, NULL, 'h'},           \
	{                                                                                          \
		"version", no_argument, NULL, 'V'                                                  \
	}

/* --from and --ring-size, for the tools that consume and produce rings. */
#define CLI_STAGE_LONGOPTS                                                                         \
	{"from", required_argument, NULL, CLI_OPT_FROM},                                           \
	{                                                                                          \
		"ring-size", required_argument, NULL, CLI_OPT_RING_SIZE                            \
	}
#define CLI_STAGE_USAGE                                                                            \
	"      --from start|end    where a new consumer starts in an input ring (default end)\n"   \
	"      --ring-size SIZE    capacity of rings this creates (default 64M)\n"

/* Usage lines for the shared options, to print inside a tool's usage(). */
#define CLI_USAGE                                                                                  \
	"  -i, --input ENDPOINT    read from ENDPOINT (repeatable; default -)\n"                   \
	"  -o, --output ENDPOINT   write to ENDPOINT (repeatable; default -)\n"                    \
	"      --name NAME         consumer name in input rings (default: the tool's name)\n"      \
	"      --json              stdin/stdout carry JSON lines, not MessagePack\n"               \
	"  -h, --help              show this help\n"                                               \
	"  -V, --version           show the version\n"

/* The last line of every usage text that takes endpoints. */
#define CLI_USAGE_ENDPOINTS "ENDPOINT is ring:NAME, -, zmq+tcp://HOST:PORT or zmq+ipc://PATH.\n"

struct mdb_cli {
	const char *in[CLI_MAX_ENDPOINTS];
	int nin;
	const char *out[CLI_MAX_ENDPOINTS];
	int nout;
	const char *name; /* NULL: the tool's name */
	bool json;
	bool help;		      /* -h was given */
	bool version;		      /* -V was given */
	int from;		      /* enum ring_from; -1: not given */
	unsigned long long ring_size; /* 0: not given */
	char err[160];		      /* why cli_option() failed */
};

/* Start a struct mdb_cli: nothing given yet. */
#define CLI_INIT                                                                                   \
	{                                                                                          \
		.from = -1                                                                         \
	}

/* Handle one option returned by getopt_long. Returns 1 when it was a shared
 * option, 0 when the tool must handle it, or -EINVAL / -E2BIG with c->err
 * saying why (the tool exits 2). */
int cli_option(struct mdb_cli *c, int opt, const char *arg);

/* Print "PROG VERSION" to stdout. */
void cli_print_version(const char *prog);

/* Check every -i/-o endpoint's syntax (and `extra`, if not NULL). Returns 0,
 * or -EINVAL with c->err naming the bad one. */
int cli_check_endpoints(struct mdb_cli *c, const char *extra);

/* Copy what was given into endpoint options: the consumer name (or
 * default_name), --json for both directions, --from and --ring-size. */
struct ep_opts;
void cli_apply(const struct mdb_cli *c, struct ep_opts *eo, const char *default_name);

/* After the getopt loop: -h calls usage(stdout) (which exits 0), -V prints
 * the version and exits 0. */
void cli_help_version(const struct mdb_cli *c, const char *prog, void (*usage)(FILE *));

/* Parse a size with an optional k/M/G suffix (powers of 1024) into *out.
 * Returns 0 or -EINVAL. */
int cli_parse_size(const char *s, unsigned long long *out);
/* Parse a duration with an optional ns/us/ms/s/m/h/d suffix (default s) into
 * nanoseconds. Returns 0 or -EINVAL. */
int cli_parse_duration(const char *s, long long *out_ns);

/* Ignore SIGPIPE (a closed stdout becomes -EPIPE from write) and make
 * SIGINT/SIGTERM set a flag and interrupt blocking waits (no SA_RESTART), so
 * the main loop sees -EINTR, checks cli_stopping() and finishes cleanly.
 * The handler only stores the flag; all work happens in the loop. */
void cli_catch_signals(void);
bool cli_stopping(void);

/* What a stop signal changes, so a wait can include it and never sleep
 * through a signal that landed just before it: a futex word that becomes
 * non-zero (and is woken) and an eventfd that becomes readable (made on
 * first use; -1 if it could not be). Valid before cli_catch_signals(). */
_Atomic uint32_t *cli_stop_word(void);
int cli_stop_fd(void);

#endif
