/* mdb-ring - create, list, inspect and remove shared-memory rings. */
#include "cli.h"
#include "log.h"
#include "ring.h"
#include "shm.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Noreturn void usage(FILE *out)
{
	fprintf(out, "usage: mdb-ring create [-s SIZE] [-m MODE] NAME...\n"
		     "       mdb-ring ls [--json]\n"
		     "       mdb-ring stat [--json] NAME...\n"
		     "       mdb-ring rm [-f] NAME...\n"
		     "       mdb-ring drop NAME CONSUMER\n"
		     "Manage the rings in $MDB_SHM_DIR (default /dev/shm/mdb).\n"
		     "  -s, --size SIZE   capacity of a new ring, a power of two (default 64M)\n"
		     "  -m, --mode MODE   file mode of a new ring, octal (default 0660)\n"
		     "  -f, --force       remove a ring even while processes use it\n"
		     "      --json        one JSON object per ring\n"
		     "  -h, --help        show this help\n"
		     "  -V, --version     show the version\n");
	exit(out == stdout ? 0 : 2);
}

static mdb_ring *open_or_die(const char *name)
{
	int err = 0;
	mdb_ring *r = ring_open(name, &err);
	if (!r)
		die(err == -ENOENT || err == -EINVAL ? 2 : 1, "ring %s: %s", name,
		    err == -EPROTO ? "not an mdb ring (or another version)" : strerror(-err));
	return r;
}

static const char *human(uint64_t n, char *buf, size_t size)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	double v = (double)n;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static void print_stat(const char *name, const struct ring_info *in, bool json)
{
	char b1[32], b2[32];
	if (json) {
		printf(
		    "{\"ring\":\"%s\",\"capacity\":%llu,\"position\":%llu,\"oldest\":%llu,"
		    "\"producer\":{\"pid\":%d,\"alive\":%s,\"epoch\":%u},\"records\":%llu,"
		    "\"bytes\":%llu,\"laps\":%llu,\"held_ns\":%llu,\"sleepers\":%u,\"consumers\":[",
		    name, (unsigned long long)in->capacity, (unsigned long long)in->position,
		    (unsigned long long)in->oldest, (int)in->producer_pid,
		    in->producer_alive ? "true" : "false", in->producer_epoch,
		    (unsigned long long)in->records, (unsigned long long)in->bytes,
		    (unsigned long long)in->laps, (unsigned long long)in->held_ns, in->sleepers);
		for (int i = 0; i < in->nslots; i++) {
			const struct ring_slot_info *s = &in->slots[i];
			printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"pid\":%d,\"alive\":%s,"
			       "\"position\":%llu,\"backlog\":%llu,\"records\":%llu,\"laps\":%llu}",
			       i ? "," : "", s->name,
			       s->kind == RING_DURABLE ? "durable" : "observer", (int)s->pid,
			       s->alive ? "true" : "false", (unsigned long long)s->position,
			       (unsigned long long)(in->position - s->position),
			       (unsigned long long)s->records, (unsigned long long)s->laps);
		}
		printf("]}\n");
		return;
	}
	printf("ring %s: capacity %s, position %llu (oldest %llu)\n", name,
	       human(in->capacity, b1, sizeof b1), (unsigned long long)in->position,
	       (unsigned long long)in->oldest);
	if (in->producer_pid)
		printf("  producer: pid %d %s, epoch %u\n", (int)in->producer_pid,
		       in->producer_alive ? "alive" : "gone", in->producer_epoch);
	else
		printf("  producer: none yet\n");
	printf("  published: %llu records, %s; held back %.3f s; observer laps %llu; sleeping %u\n",
	       (unsigned long long)in->records, human(in->bytes, b2, sizeof b2), in->held_ns / 1e9,
	       (unsigned long long)in->laps, in->sleepers);
	if (in->nslots == 0) {
		printf("  consumers: none\n");
		return;
	}
	printf("  %-24s %-8s %8s %-5s %14s %12s %12s %6s\n", "CONSUMER", "KIND", "PID", "STATE",
	       "POSITION", "BACKLOG", "RECORDS", "LAPS");
	for (int i = 0; i < in->nslots; i++) {
		const struct ring_slot_info *s = &in->slots[i];
		printf("  %-24s %-8s %8d %-5s %14llu %12s %12llu %6llu\n", s->name,
		       s->kind == RING_DURABLE ? "durable" : "observer", (int)s->pid,
		       s->alive ? "alive" : "gone", (unsigned long long)s->position,
		       human(in->position - s->position, b1, sizeof b1),
		       (unsigned long long)s->records, (unsigned long long)s->laps);
	}
}

static int cmd_create(int argc, char **argv, uint64_t size, mode_t mode)
{
	if (argc == 0)
		usage(stderr);
	for (int i = 0; i < argc; i++) {
		int rc = ring_create(argv[i], size, mode);
		if (rc == -EINVAL)
			die(2, "ring %s: bad name, or size %llu not a power of two >= %u", argv[i],
			    (unsigned long long)size, RING_MIN_CAPACITY);
		if (rc < 0)
			die(1, "ring %s: %s", argv[i], strerror(-rc));
	}
	return 0;
}

static int cmd_stat(int argc, char **argv, bool json)
{
	if (argc == 0)
		usage(stderr);
	struct ring_info info;
	for (int i = 0; i < argc; i++) {
		mdb_ring *r = open_or_die(argv[i]);
		ring_info(r, &info);
		print_stat(argv[i], &info, json);
		ring_close(&r);
	}
	return 0;
}

static int cmd_ls(bool json)
{
	DIR *d = opendir(shm_dir());
	if (!d) {
		if (errno == ENOENT)
			return 0;
		die(1, "%s: %s", shm_dir(), strerror(errno));
	}
	struct dirent *de;
	struct ring_info info;
	char b1[32];
	bool header = false;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n <= 5 || strcmp(de->d_name + n - 5, ".ring") != 0)
			continue;
		char name[RING_NAME_MAX];
		if (n - 5 >= sizeof name)
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		int err;
		mdb_ring *r = ring_open(name, &err);
		if (!r) {
			logmsg(LOG_WARNING, "%s/%s: %s", shm_dir(), de->d_name,
			       err == -EPROTO ? "not an mdb ring" : strerror(-err));
			continue;
		}
		ring_info(r, &info);
		ring_close(&r);
		if (json) {
			print_stat(name, &info, true);
			continue;
		}
		if (!header)
			printf("%-24s %10s %14s %12s %-9s %s\n", "RING", "CAPACITY", "POSITION",
			       "RECORDS", "PRODUCER", "CONSUMERS");
		header = true;
		int alive = 0;
		for (int i = 0; i < info.nslots; i++)
			alive += info.slots[i].alive;
		printf("%-24s %10s %14llu %12llu %-9s %d (%d alive)\n", name,
		       human(info.capacity, b1, sizeof b1), (unsigned long long)info.position,
		       (unsigned long long)info.records,
		       !info.producer_pid    ? "none"
		       : info.producer_alive ? "alive"
					     : "gone",
		       info.nslots, alive);
	}
	closedir(d);
	return 0;
}

static int cmd_rm(int argc, char **argv, bool force)
{
	if (argc == 0)
		usage(stderr);
	int status = 0;
	struct ring_info info;
	for (int i = 0; i < argc; i++) {
		mdb_ring *r = open_or_die(argv[i]);
		ring_info(r, &info);
		ring_close(&r);
		int alive = info.producer_alive;
		for (int k = 0; k < info.nslots; k++)
			alive += info.slots[k].alive;
		if (alive && !force) {
			logmsg(LOG_ERR, "ring %s: %d live process(es) use it; -f removes it anyway",
			       argv[i], alive);
			status = 1;
			continue;
		}
		int rc = ring_unlink(argv[i]);
		if (rc < 0) {
			logmsg(LOG_ERR, "ring %s: %s", argv[i], strerror(-rc));
			status = 1;
		}
	}
	return status;
}

static int cmd_drop(int argc, char **argv)
{
	if (argc != 2)
		usage(stderr);
	mdb_ring *r = open_or_die(argv[0]);
	int rc = ring_consumer_drop(r, argv[1]);
	ring_close(&r);
	if (rc == -ENOENT)
		die(2, "ring %s has no consumer %s", argv[0], argv[1]);
	if (rc == -EBUSY)
		die(1, "consumer %s of ring %s is alive; stop it first", argv[1], argv[0]);
	if (rc < 0)
		die(1, "drop %s: %s", argv[1], strerror(-rc));
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = CLI_OPT_FIRST_TOOL };
	static const struct option longopts[] = {
	    {"size", required_argument, NULL, 's'},
	    {"mode", required_argument, NULL, 'm'},
	    {"force", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long long size = RING_DEFAULT_CAPACITY;
	mode_t mode = 0660;
	bool force = false, json = false;
	char *end;
	log_init(argv[0]);
	int opt;
	/* options may follow the command word: mdb-ring create -s 1M bars */
	while ((opt = getopt_long(argc, argv, "s:m:fhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (cli_parse_size(optarg, &size) < 0)
				die(2, "--size: not a size: '%s'", optarg);
			break;
		case 'm':
			mode = (mode_t)strtoul(optarg, &end, 8);
			if (*end || end == optarg || mode > 0777)
				die(2, "--mode: not an octal file mode: '%s'", optarg);
			break;
		case 'f':
			force = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			usage(stdout);
		case 'V':
			cli_print_version("mdb-ring");
			return 0;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage(stderr);
	const char *cmd = argv[0];
	argc--;
	argv++;
	if (strcmp(cmd, "create") == 0)
		return cmd_create(argc, argv, size, mode);
	if (strcmp(cmd, "ls") == 0 && argc == 0)
		return cmd_ls(json);
	if (strcmp(cmd, "stat") == 0)
		return cmd_stat(argc, argv, json);
	if (strcmp(cmd, "rm") == 0)
		return cmd_rm(argc, argv, force);
	if (strcmp(cmd, "drop") == 0)
		return cmd_drop(argc, argv);
	usage(stderr);
}
