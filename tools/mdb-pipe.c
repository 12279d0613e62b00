/* mdb-pipe - copy records from its inputs to its outputs.
 *
 * Bridges rings, stdio and ZeroMQ, converting between MessagePack and JSON
 * lines on the way: this is how a pipeline spans two hosts, or how a shell
 * script feeds a ring.
 */
#include "clock.h"
#include "cli.h"
#include "counters.h"
#include "endpoint.h"
#include "log.h"
#include "notify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Records passed on between two releases of the input rings. */
#define RELEASE_EVERY 64

enum {
	OPT_OBSERVER = CLI_OPT_FIRST_TOOL,
	OPT_TOPIC,
	OPT_JSON_IN,
	OPT_JSON_OUT,
};

static _Noreturn void usage(FILE *out)
{
	fprintf(out,
		"usage: mdb-pipe [-i ENDPOINT]... [-o ENDPOINT]... [--name NAME] [--json]\n"
		"                [--json-in] [--json-out] [--observer] [--from start|end]\n"
		"                [--ring-size SIZE] [--topic PREFIX]\n"
		"Copy records from every input to every output.\n" CLI_USAGE
		"      --json-in           only stdin carries JSON lines\n"
		"      --json-out          only stdout carries JSON lines\n"
		"      --observer          join input rings as an observer (never hold the producer)\n"
		CLI_STAGE_USAGE
		"      --topic PREFIX      ZeroMQ inputs: only topics starting with PREFIX (e.g. bar/ES)\n"
		CLI_USAGE_ENDPOINTS);
	exit(out == stdout ? 0 : 2);
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
	    {NULL, 0, NULL, 0},
	};
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

	/* init */
	char msg[512];
	int err = 0;
	cli_catch_signals();
	mdb_counters *cnt = counters_open("mdb-pipe", eo.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	mdb_counter *c_in = counter_get(cnt, "in"), *c_out = counter_get(cnt, "out"),
		    *c_rej = counter_get(cnt, "rejects"), *c_err = counter_get(cnt, "errors"),
		    *c_laps = counter_get(cnt, "laps"), *c_last = counter_get(cnt, "last_update_ns"),
		    *c_held = counter_get(cnt, "held_back_250ms");
	mdb_inputs *in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	mdb_outputs *out = outputs_open(cli.out, cli.nout, &eo, &err, msg, sizeof msg);
	if (!out)
		die(err == -EINVAL ? 2 : 1, "%s", msg);

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
		if (rc == 0) {
			/* idle: everything read has been written; flush, release,
			 * then sleep */
			if (outputs_flush(out) == -EPIPE)
				break;
			inputs_release(in);
			unreleased = 0;
			notify_watchdog();
			rc = inputs_read(in, &m, notify_wait_ns(-1));
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
	outputs_close(&out);
	inputs_close(&in);
	counters_close(&cnt);
	return status;
}
