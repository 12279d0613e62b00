/* test_counters.c - shm/counters: file life cycle, registration, readers. */
#include <criterion/criterion.h>

#include "counters.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
	tu_shm_dir(dir, sizeof dir);
}

/* Children forked by spawn_owner(), killed here even when a test fails. */
static pid_t owners[8];
static int nowners;

static void teardown(void)
{
	for (int i = 0; i < nowners; i++) {
		kill(owners[i], SIGKILL);
		waitpid(owners[i], NULL, 0);
	}
	nowners = 0;
	tu_rm_rf(dir);
}

TestSuite(counters, .init = setup, .fini = teardown);

/* The path counters_open() uses for (tool, pid). */
static void cnt_path(char *buf, size_t size, const char *tool, pid_t pid)
{
	snprintf(buf, size, "%s/stat/%s.%d.cnt", dir, tool, (int)pid);
}

static int count_entries(const char *sub)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, sub);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* counters_scan() results collected for assertions. */
struct seen {
	int n;
	struct counters_view v[8];
};

static int collect(const struct counters_view *v, void *arg)
{
	struct seen *s = arg;
	if (s->n < 8)
		s->v[s->n] = *v;
	s->n++;
	return 0;
}

static const struct counters_view *find_pid(const struct seen *s, pid_t pid)
{
	for (int i = 0; i < s->n && i < 8; i++)
		if (s->v[i].pid == pid)
			return &s->v[i];
	return NULL;
}

static uint64_t value_of(const struct counters_view *v, const char *name)
{
	for (int i = 0; i < v->n; i++)
		if (strcmp(v->c[i].name, name) == 0)
			return v->c[i].value;
	cr_assert_fail("counter %s not in view", name);
	return 0;
}

/* Fork a child that opens counters for `tool`, sets in=42 and out=7, says
 * so on a pipe and waits to be killed. */
static pid_t spawn_owner(const char *tool)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* never outlive the test, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		close(p[0]);
		int err;
		mdb_counters *c = counters_open(tool, "kid", &err);
		if (!c)
			_exit(1);
		counter_set(counter_get(c, "in"), 42);
		counter_add(counter_get(c, "out"), 7);
		(void)!write(p[1], "r", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (nowners < 8)
		owners[nowners++] = pid;
	char b;
	cr_assert_eq(read(p[0], &b, 1), 1, "child %d did not open its counters", (int)pid);
	close(p[0]);
	return pid;
}

static void kill_owner(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < nowners; i++)
		if (owners[i] == pid)
			owners[i--] = owners[--nowners];
}

Test(counters, open_creates_file_mode_0640)
{
	umask(077); /* the mode must not depend on the caller's umask */
	int err = 0;
	mdb_counters *c = counters_open("mdb-test", "x", &err);
	cr_assert_not_null(c, "counters_open: %s", strerror(-err));

	char path[PATH_MAX];
	struct stat st;
	cnt_path(path, sizeof path, "mdb-test", getpid());
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	cr_assert_eq(count_entries("stat"), 1, "a temp file was left behind");
	counters_close(&c);
}

Test(counters, open_rejects_bad_tool_names)
{
	int err = 0;
	cr_assert_null(counters_open(NULL, NULL, &err));
	cr_assert_eq(err, -EINVAL);
	err = 0;
	cr_assert_null(counters_open("../escape", NULL, &err));
	cr_assert_eq(err, -EINVAL);
	err = 0;
	cr_assert_null(counters_open("", NULL, &err));
	cr_assert_eq(err, -EINVAL);
}

Test(counters, get_returns_same_pointer_for_same_name)
{
	int err;
	mdb_counters *c = counters_open("mdb-test", NULL, &err);
	cr_assert_not_null(c);
	mdb_counter *a = counter_get(c, "in");
	mdb_counter *b = counter_get(c, "out");
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_neq(a, b);
	cr_assert_eq(counter_get(c, "in"), a);
	cr_assert_eq(counter_get(c, "out"), b);
	counter_add(a, 3);
	counter_add(a, 4);
	cr_assert_eq(counter_value(counter_get(c, "in")), 7);
	cr_assert_null(counter_get(NULL, "in"));
	cr_assert_null(counter_get(c, NULL));
	counter_add(NULL, 1); /* no-ops, no crash */
	counter_set(NULL, 1);
	cr_assert_eq(counter_value(NULL), 0);
	counters_close(&c);
}

Test(counters, get_returns_null_when_table_full)
{
	int err;
	mdb_counters *c = counters_open("mdb-test", NULL, &err);
	cr_assert_not_null(c);
	mdb_counter *k[COUNTERS_MAX];
	char name[32];
	for (int i = 0; i < COUNTERS_MAX; i++) {
		snprintf(name, sizeof name, "c%d", i);
		k[i] = counter_get(c, name);
		cr_assert_not_null(k[i], "counter %d", i);
		for (int j = 0; j < i; j++)
			cr_assert_neq(k[i], k[j]);
	}
	cr_assert_null(counter_get(c, "one-too-many"));
	cr_assert_eq(counter_get(c, "c0"), k[0], "existing names still resolve when full");
	snprintf(name, sizeof name, "c%d", COUNTERS_MAX - 1);
	cr_assert_eq(counter_get(c, name), k[COUNTERS_MAX - 1]);
	counters_close(&c);
}

Test(counters, long_and_bad_names_are_rejected)
{
	int err;
	mdb_counters *c = counters_open("mdb-test", NULL, &err);
	cr_assert_not_null(c);
	char longest[COUNTER_NAME_MAX], too_long[COUNTER_NAME_MAX + 1];
	memset(longest, 'a', sizeof longest - 1);
	longest[sizeof longest - 1] = '\0';
	memset(too_long, 'a', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';

	mdb_counter *k = counter_get(c, longest);
	cr_assert_not_null(k, "a name of COUNTER_NAME_MAX-1 chars fits");
	counter_set(k, 5);
	/* rejected, not truncated: truncation would alias it to `longest` */
	cr_assert_null(counter_get(c, too_long));
	cr_assert_null(counter_get(c, ""));
	cr_assert_null(counter_get(c, "has space"));
	cr_assert_null(counter_get(c, "tab\t"));

	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.v[0].n, 1, "rejected names took no slot");
	cr_assert_str_eq(s.v[0].c[0].name, longest);
	cr_assert_eq(s.v[0].c[0].value, 5);
	counters_close(&c);
}

Test(counters, long_label_is_truncated)
{
	char label[200];
	memset(label, 'L', sizeof label - 1);
	label[sizeof label - 1] = '\0';
	int err;
	mdb_counters *c = counters_open("mdb-test", label, &err);
	cr_assert_not_null(c);
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(strlen(s.v[0].label), COUNTERS_LABEL_MAX - 1);
	cr_assert_eq(strncmp(s.v[0].label, label, COUNTERS_LABEL_MAX - 1), 0);
	counters_close(&c);
}

Test(counters, owner_sees_itself_alive)
{
	int err;
	mdb_counters *c = counters_open("mdb-self", "me", &err);
	cr_assert_not_null(c);
	counter_set(counter_get(c, "lag"), 9);
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.v[0].pid, getpid());
	cr_assert(s.v[0].alive, "the reader's own open() is another description");
	cr_assert_str_eq(s.v[0].tool, "mdb-self");
	cr_assert_str_eq(s.v[0].label, "me");
	cr_assert_gt(s.v[0].started_ns, 0);
	cr_assert_eq(value_of(&s.v[0], "lag"), 9);
	char path[PATH_MAX];
	cnt_path(path, sizeof path, "mdb-self", getpid());
	cr_assert_str_eq(s.v[0].path, path);
	counters_close(&c);
}

Test(counters, child_values_and_liveness_seen_by_parent)
{
	pid_t pid = spawn_owner("mdb-child");
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	const struct counters_view *v = find_pid(&s, pid);
	cr_assert_not_null(v);
	cr_assert(v->alive);
	cr_assert_str_eq(v->tool, "mdb-child");
	cr_assert_str_eq(v->label, "kid");
	cr_assert_eq(v->n, 2);
	cr_assert_eq(value_of(v, "in"), 42);
	cr_assert_eq(value_of(v, "out"), 7);
	cr_assert_eq(counters_gc(), 0, "gc must not touch a live owner's file");

	kill_owner(pid);
	memset(&s, 0, sizeof s);
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1, "the file outlives its owner");
	v = find_pid(&s, pid);
	cr_assert_not_null(v);
	cr_assert_not(v->alive);
	cr_assert_eq(value_of(v, "in"), 42, "last values stay readable");

	char path[PATH_MAX];
	cnt_path(path, sizeof path, "mdb-child", pid);
	cr_assert_eq(access(path, F_OK), 0);
	cr_assert_eq(counters_gc(), 1);
	cr_assert_neq(access(path, F_OK), 0);
	memset(&s, 0, sizeof s);
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 0);
}

Test(counters, scan_sorts_by_tool_then_pid)
{
	pid_t b = spawn_owner("mdb-b");
	pid_t a1 = spawn_owner("mdb-a");
	pid_t a2 = spawn_owner("mdb-a");
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.v[0].tool, "mdb-a");
	cr_assert_str_eq(s.v[1].tool, "mdb-a");
	cr_assert_str_eq(s.v[2].tool, "mdb-b");
	cr_assert_lt(s.v[0].pid, s.v[1].pid);
	cr_assert(s.v[0].pid == (a1 < a2 ? a1 : a2));
	cr_assert_eq(s.v[2].pid, b);
	kill_owner(a1);
	kill_owner(a2);
	kill_owner(b);
}

static int stop_at_first(const struct counters_view *v, void *arg)
{
	(void)v;
	++*(int *)arg;
	return 17;
}

Test(counters, scan_stops_when_callback_says_so)
{
	int err;
	mdb_counters *c1 = counters_open("mdb-x", NULL, &err);
	mdb_counters *c2 = counters_open("mdb-y", NULL, &err);
	cr_assert_not_null(c1);
	cr_assert_not_null(c2);
	int calls = 0;
	cr_assert_eq(counters_scan(stop_at_first, &calls), 17);
	cr_assert_eq(calls, 1);
	counters_close(&c1);
	counters_close(&c2);
}

Test(counters, missing_directory_is_empty)
{
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(counters_gc(), 0);
}

static void write_file(const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/stat/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

Test(counters, garbage_files_are_skipped)
{
	int err;
	mdb_counters *c = counters_open("mdb-real", "ok", &err);
	cr_assert_not_null(c);
	counter_set(counter_get(c, "in"), 1);

	/* a real file's bytes, to make near-misses from */
	char path[PATH_MAX];
	cnt_path(path, sizeof path, "mdb-real", getpid());
	static unsigned char img[1 << 16];
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	ssize_t len = read(fd, img, sizeof img);
	close(fd);
	cr_assert_gt(len, 64);
	cr_assert_lt(len, (ssize_t)sizeof img);

	write_file("empty.1.cnt", "", 0);
	write_file("short.2.cnt", img, len / 2);
	write_file("long.3.cnt", img, len + 8);
	static unsigned char junk[1 << 16];
	for (ssize_t i = 0; i < len; i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	write_file("junk.4.cnt", junk, len);
	memset(junk, 0, len);
	write_file("zeros.5.cnt", junk, len); /* what a half-made file looks like */
	memcpy(junk, img, len);
	junk[0] ^= 0xff;
	write_file("magic.6.cnt", junk, len);
	write_file("notcnt.7", img, len);      /* valid bytes, wrong name */
	write_file(".hidden.8.cnt", img, len); /* temp names are never read */
	snprintf(path, sizeof path, "%s/stat/dir.9.cnt", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/stat/fifo.10.cnt", dir);
	cr_assert_eq(mkfifo(path, 0600), 0); /* must not block the reader */

	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.v[0].tool, "mdb-real");
	cr_assert(s.v[0].alive);
	cr_assert_eq(value_of(&s.v[0], "in"), 1);

	/* unowned *.cnt regular files go; the live file, the directory, the
	 * fifo, other names and a fresh temp file stay */
	cr_assert_eq(counters_gc(), 6);
	memset(&s, 0, sizeof s);
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(count_entries("stat"), 5);
	counters_close(&c);
}

Test(counters, close_removes_file)
{
	int err;
	mdb_counters *c = counters_open("mdb-test", NULL, &err);
	cr_assert_not_null(c);
	char path[PATH_MAX];
	cnt_path(path, sizeof path, "mdb-test", getpid());
	cr_assert_eq(access(path, F_OK), 0);
	counters_close(&c);
	cr_assert_null(c);
	cr_assert_neq(access(path, F_OK), 0);
	cr_assert_eq(errno, ENOENT);
	counters_close(&c); /* NULL is fine */
	counters_close(NULL);
}

Test(counters, reopen_after_close_starts_empty)
{
	int err;
	mdb_counters *c = counters_open("mdb-test", NULL, &err);
	cr_assert_not_null(c);
	counter_set(counter_get(c, "in"), 5);
	counters_close(&c);
	c = counters_open("mdb-test", NULL, &err);
	cr_assert_not_null(c);
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.v[0].n, 0);
	cr_assert_eq(counter_value(counter_get(c, "in")), 0);
	counters_close(&c);
}

Test(counters, second_open_of_same_tool_is_refused)
{
	int err = 0;
	mdb_counters *c = counters_open("mdb-test", "one", &err);
	cr_assert_not_null(c);
	cr_assert_null(counters_open("mdb-test", "two", &err));
	cr_assert_eq(err, -EEXIST, "err %d", err);
	cr_assert_eq(count_entries("stat"), 1, "the refused open left a file");
	struct seen s = {0};
	cr_assert_eq(counters_scan(collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.v[0].label, "one");
	counters_close(&c);
}
