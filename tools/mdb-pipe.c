/* mdb-pipe - copy records from its inputs to its outputs.
 *
 * Bridges rings, stdio and ZeroMQ, converting between MessagePack and JSON
 * lines on the way: this is how a pipeline spans two hosts, or how a shell
 * script feeds a ring. Across hosts it recovers what ZeroMQ drops: the
 * sender (--replay) serves its ring's records again on request, and the
 * receiver (--replay-from) asks for each gap its sequence frames reveal.
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "endpoint.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Records passed on between two releases of the input rings. */
#define RELEASE_EVERY 64
/* With --replay, an idle sender's heartbeat interval. */
#define HEARTBEAT_NS 1000000000LL

enum {
	OPT_OBSERVER = CLI_OPT_FIRST_TOOL,
	OPT_TOPIC,
	OPT_JSON_IN,
	OPT_JSON_OUT,
	OPT_REPLAY,
	OPT_REPLAY_FROM,
	OPT_HWM,
};

static _Noreturn void usage(FILE *out)
{
	/* one line of source per line of help */
	/* clang-format off */
	fprintf(out,
		"usage: mdb-pipe [-i ENDPOINT]... [-o ENDPOINT]... [--name NAME] [--json]\n"
		"                [--json-in] [--json-out] [--observer] [--from start|end]\n"
		"                [--ring-size SIZE] [--topic PREFIX] [--hwm N]\n"
		"                [--replay ADDRESS | --replay-from ADDRESS]\n"
		"Copy records from every input to every output.\n" CLI_USAGE
		"      --json-in           only stdin carries JSON lines\n"
		"      --json-out          only stdout carries JSON lines\n"
		"      --observer          join input rings as an observer (never hold the producer)\n"
		CLI_STAGE_USAGE
		"      --topic PREFIX      ZeroMQ inputs: only topics starting with PREFIX (e.g. bar/ES)\n"
		"      --hwm N             ZeroMQ queue limit in records (default 1000)\n"
		"      --replay ADDRESS    serve replays of the input ring on ZeroMQ ADDRESS\n"
		"      --replay-from ADDRESS  ZeroMQ input: ask ADDRESS to replay each gap\n"
		CLI_USAGE_ENDPOINTS);
	/* clang-format on */
	exit(out == stdout ? 0 : 2);
}

/* "zmq+tcp://..." or "tcp://...": ZeroMQ's own form. */
static const char *zmq_addr(const char *a)
{
	return strncmp(a, "zmq+", 4) == 0 ? a + 4 : a;
}

/* Log what the inputs noticed (gaps, replays) and count it. */
static void report(mdb_inputs *in, struct ep_zstats *zs, mdb_counter *gaps, mdb_counter *replayed,
		   mdb_counter *dups, mdb_counter *lost)
{
	const char *note;
	while ((note = inputs_notice(in)))
		logmsg(LOG_WARNING, "%s", note);
	struct ep_zstats now;
	inputs_zstats(in, &now);
	if (now.gaps == zs->gaps && now.dups == zs->dups && now.replayed == zs->replayed &&
	    now.lost == zs->lost)
		return;
	*zs = now;
	counter_set(gaps, now.gaps);
	counter_set(replayed, now.replayed);
	counter_set(dups, now.dups);
	counter_set(lost, now.lost);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"observer", no_argument, NULL, OPT_OBSERVER},
	    CLI_STAGE_LONGOPTS,
	    {"topic", required_argument, NULL, OPT_TOPIC},
	    {"json-in", no_argument, NULL, OPT_JSON_IN},
	    {"json-out", no_argument, NULL, OPT_JSON_OUT},
	    {"replay", required_argument, NULL, OPT_REPLAY},
	    {"replay-from", required_argument, NULL, OPT_REPLAY_FROM},
	    {"hwm", required_argument, NULL, OPT_HWM},
	    {NULL, 0, NULL, 0},
	};
	const char *replay = NULL;
	char *end;
	struct mdb_cli cli = CLI_INIT;
	bool json_in = false, json_out = false;
	struct ep_opts eo;
	ep_opts_default(&eo);
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "%s", cli.err);
		if (rc > 0)
			continue;
		switch (opt) {
		case OPT_OBSERVER:
			eo.kind = RING_OBSERVER;
			break;
		case OPT_JSON_IN:
			json_in = true;
			break;
		case OPT_JSON_OUT:
			json_out = true;
			break;
		case OPT_TOPIC:
			eo.zmq_topic = optarg;
			break;
		case OPT_REPLAY:
			replay = zmq_addr(optarg);
			break;
		case OPT_REPLAY_FROM:
			eo.zmq_replay = zmq_addr(optarg);
			eo.zmq_cursor = true;
			break;
		case OPT_HWM:
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > INT_MAX)
				die(2, "--hwm: not a positive number: %s", optarg);
			eo.zmq_hwm = (int)v;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-pipe", usage);
	if (argc > 0)
		usage(stderr);
	cli_apply(&cli, &eo, "mdb-pipe");
	/* a durable input advances only once its records have left this
	 * process (stdout is buffered), so kill -9 loses nothing */
	eo.manual_release = true;
	/* a held-back output ring is waited on in slices, so a stop signal
	 * that arrives between two futex waits is still seen promptly */
	eo.publish_timeout_ns = 250000000;
	eo.json_in |= json_in;
	eo.json_out |= json_out;
	if (cli_check_endpoints(&cli, NULL) < 0)
		die(2, "%s", cli.err);
	/* sequence frames (and so replays) need one ring's positions */
	bool one_ring = cli.nin == 1 && strncmp(cli.in[0], "ring:", 5) == 0;
	eo.zmq_seq = one_ring;
	if (replay && !one_ring)
		die(2, "--replay needs exactly one input, a ring");
	if (eo.zmq_replay && (cli.nin != 1 || strncmp(cli.in[0], "zmq+", 4) != 0))
		die(2, "--replay-from needs exactly one input, a ZeroMQ one");
	if (eo.zmq_replay && eo.zmq_topic)
		die(2, "--replay-from and --topic exclude each other (a filtered stream has gaps)");
	if (replay && eo.zmq_replay)
		die(2, "--replay and --replay-from exclude each other");

	/* init */
	char msg[512];
	int err = 0;
	cli_catch_signals();
	mdb_counters *cnt = counters_open("mdb-pipe", eo.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	mdb_counter *c_in = counter_get(cnt, "in"), *c_out = counter_get(cnt, "out"),
		    *c_rej = counter_get(cnt, "rejects"), *c_err = counter_get(cnt, "errors"),
		    *c_laps = counter_get(cnt, "laps"),
		    *c_last = counter_get(cnt, "last_update_ns"),
		    *c_held = counter_get(cnt, "held_back_250ms"),
		    *c_gaps = counter_get(cnt, "gaps"), *c_replayed = counter_get(cnt, "replayed"),
		    *c_dups = counter_get(cnt, "duplicates"),
		    *c_lost = counter_get(cnt, "gaps_lost"),
		    *c_served = counter_get(cnt, "replay_served");
	mdb_inputs *in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	mdb_outputs *out = outputs_open(cli.out, cli.nout, &eo, &err, msg, sizeof msg);
	if (!out)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	mdb_replay *rs = NULL;
	if (replay) {
		/* the server reads the ring as an observer of its own */
		char oname[RING_NAME_MAX];
		if (snprintf(oname, sizeof oname, "%s.replay", eo.name) >= (int)sizeof oname)
			snprintf(oname, sizeof oname, "mdb-pipe.replay.%d", (int)getpid());
		rs = replay_serve(cli.in[0] + 5, replay, oname, &err, msg, sizeof msg);
		if (!rs)
			die(err == -EINVAL ? 2 : 1, "%s", msg);
	}
	struct ep_zstats zs = {0};

	notify_ready(NULL);

	/* loop */
	int status = 0;
	unsigned unreleased = 0;
	bool unwritten = false;
	struct mdb_msg m;
	while (!cli_stopping()) {
		/* release (which covers every record read so far) only between
		 * records, after pushing buffered output out */
		if (unreleased >= RELEASE_EVERY) {
			if (outputs_flush(out) == -EPIPE)
				break;
			inputs_release(in);
			unreleased = 0;
			notify_watchdog();
		}
		int rc = inputs_read(in, &m, 0);
		if (eo.zmq_replay)
			report(in, &zs, c_gaps, c_replayed, c_dups, c_lost);
		if (rc == 0) {
			/* idle: everything read has been written; flush, release,
			 * then sleep */
			if (outputs_flush(out) == -EPIPE)
				break;
			inputs_release(in);
			unreleased = 0;
			notify_watchdog();
			/* a replay server's receivers learn from heartbeats that
			 * a burst is over, so they see a gap at its end too */
			uint64_t src, pos;
			if (rs && inputs_position(in, 0, &src, &pos) == 0)
				outputs_heartbeat(out, src, pos);
			rc = inputs_read(in, &m, notify_wait_ns(rs ? HEARTBEAT_NS : -1));
			if (eo.zmq_replay)
				report(in, &zs, c_gaps, c_replayed, c_dups, c_lost);
			if (rs) {
				uint64_t served, reqs;
				replay_stats(rs, &served, &reqs);
				counter_set(c_served, served);
			}
		}
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc == -EPIPE)
			break; /* every input has ended */
		if (rc == -EBADMSG) {
			counter_add(c_rej, 1);
			logmsg(LOG_WARNING, "rejected: %s", inputs_error(in));
			continue;
		}
		if (rc < 0) {
			logmsg(LOG_ERR, "read: %s", strerror(-rc));
			status = 1;
			break;
		}
		counter_add(c_in, 1);
		/* an output ring may hold us back; a signal interrupts the wait
		 * and, unless we are stopping, the record is written again (its
		 * key makes a repeat harmless downstream) */
		while (((rc = outputs_write(out, &m)) == -EINTR || rc == -ETIMEDOUT) &&
		       !cli_stopping())
			counter_add(c_held, rc == -ETIMEDOUT);
		if (rc == -EINTR || rc == -ETIMEDOUT) {
			unwritten = true; /* stopping: the record stays in its ring */
			break;
		}
		if (rc == -EPIPE)
			break; /* downstream went away: nothing left to do */
		if (rc < 0) {
			counter_add(c_err, 1);
			logmsg(LOG_WARNING, "write: %s", strerror(-rc));
		} else {
			counter_add(c_out, 1);
		}
		unreleased++;
		counter_set(c_laps, inputs_laps(in));
		counter_set(c_last, (uint64_t)wall_ns());
	}
	if (outputs_flush(out) == 0 && !status && !unwritten)
		inputs_release(in);

	/* finish */
	notify_stopping();
	if (eo.zmq_replay)
		logmsg(LOG_INFO,
		       "replay: %llu gaps, %llu records replayed, %llu duplicates dropped, %llu "
		       "gaps lost",
		       (unsigned long long)zs.gaps, (unsigned long long)zs.replayed,
		       (unsigned long long)zs.dups, (unsigned long long)zs.lost);
	if (rs) {
		uint64_t served, reqs;
		replay_stats(rs, &served, &reqs);
		logmsg(LOG_INFO, "replay server: %llu records in %llu requests",
		       (unsigned long long)served, (unsigned long long)reqs);
		replay_close(&rs);
	}
	outputs_close(&out);
	inputs_close(&in);
	counters_close(&cnt);
	return status;
}
