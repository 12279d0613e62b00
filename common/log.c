/* log.c - stderr logging with sd-daemon priority prefixes under journald. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *prog = "mdb";
static bool journal;

/* JOURNAL_STREAM is "dev:ino" of the journal socket; it only counts when
 * stderr is still that socket (not redirected by a shell pipeline). */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%lu:%lu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_init(const char *name)
{
	const char *slash = strrchr(name, '/');
	prog = slash ? slash + 1 : name;
	journal = stderr_is_journal();
}

const char *log_prog(void)
{
	return prog;
}

static void vlog(int prio, const char *fmt, va_list ap)
{
	char line[1024];
	int n = journal ? snprintf(line, sizeof line, "<%d>", prio)
			: snprintf(line, sizeof line, "%s: ", prog);
	vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	size_t len = strlen(line);
	line[len++] = '\n';
	/* one write per line, so lines from several processes never interleave */
	(void)!write(STDERR_FILENO, line, len);
}

void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(prio, fmt, ap);
	va_end(ap);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(code);
}
