/* log.h - one line per event on stderr. Under journald (JOURNAL_STREAM is
 * set) each line starts with its sd-daemon priority prefix ("<3>"), so the
 * journal keeps the level; otherwise lines read "prog: message". */
#ifndef MDB_LOG_H
#define MDB_LOG_H

#include <syslog.h>

/* Remember the program name and whether stderr goes to the journal. */
void log_init(const char *prog);
/* Log at a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). */
void logmsg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log at LOG_ERR and exit with `code` (1 runtime failure, 2 usage/config). */
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The program name given to log_init(). */
const char *log_prog(void);

#endif
