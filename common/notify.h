/* notify.h - systemd's readiness and watchdog protocol (sd_notify(3)),
 * spoken directly: one datagram to $NOTIFY_SOCKET, no libsystemd.
 *
 * Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op, so tools
 * call them unconditionally. */
#ifndef MDB_NOTIFY_H
#define MDB_NOTIFY_H

#include <stdint.h>

/* Send STATE (e.g. "READY=1\nSTATUS=reading ring:bars") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when there is no socket, or -errno. */
int notify_send(const char *state);

/* READY=1 plus an optional STATUS= line (status may be NULL). */
int notify_ready(const char *status);

/* STOPPING=1: the tool is finishing. */
int notify_stopping(void);

/* How long a main loop may block between notify_watchdog() calls: half of
 * $WATCHDOG_USEC in nanoseconds, or -1 when no watchdog is asked for (then
 * the loop may block forever). */
int64_t notify_watchdog_interval(void);

/* WATCHDOG=1, sent only when a quarter of the watchdog period has passed
 * since the last one (one clock read otherwise), so a busy loop may call it
 * every few thousand records. Returns like notify_send(). */
int notify_watchdog(void);

/* A loop's wait: timeout_ns (< 0: forever) shortened to the watchdog
 * interval when a watchdog is set. */
int64_t notify_wait_ns(int64_t timeout_ns);

#endif
