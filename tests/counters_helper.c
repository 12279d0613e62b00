/* counters_helper - a stand-in process that owns counters, for tool tests.
 *
 *	counters_helper TOOL LABEL [NAME=VALUE ...]
 *
 * Opens counters for TOOL with LABEL, sets each NAME to VALUE, prints
 * "ready" on stdout once they are visible, then adds 1 to "ticks" every
 * 10 ms until it is killed (so watchers see a rate of about 100/s).
 */
#include "counters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: counters_helper TOOL LABEL [NAME=VALUE ...]\n");
		return 2;
	}
	int err;
	mdb_counters *c = counters_open(argv[1], argv[2], &err);
	if (!c) {
		fprintf(stderr, "counters_helper: counters_open: %s\n", strerror(-err));
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		char name[COUNTER_NAME_MAX];
		const char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof name) {
			fprintf(stderr, "counters_helper: bad NAME=VALUE '%s'\n", argv[i]);
			return 2;
		}
		memcpy(name, argv[i], eq - argv[i]);
		name[eq - argv[i]] = '\0';
		mdb_counter *k = counter_get(c, name);
		if (!k) {
			fprintf(stderr, "counters_helper: cannot register '%s'\n", name);
			return 1;
		}
		counter_set(k, strtoull(eq + 1, NULL, 10));
	}
	mdb_counter *ticks = counter_get(c, "ticks");
	printf("ready\n");
	fflush(stdout);
	struct timespec ts = {0, 10 * 1000 * 1000};
	for (;;) {
		nanosleep(&ts, NULL);
		counter_add(ticks, 1);
	}
}
