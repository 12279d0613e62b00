/* notify.c - sd_notify(3) without libsystemd: the protocol is one
 * SOCK_DGRAM message of NEWLINE-separated assignments to the AF_UNIX socket
 * named by $NOTIFY_SOCKET ('@' at the start means the abstract namespace). */
#include "notify.h"
#include "clock.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct {
	bool init;
	int fd; /* datagram socket, -1 until first send */
	struct sockaddr_un addr;
	socklen_t addrlen; /* 0: no NOTIFY_SOCKET */
	int64_t wd_ns;	   /* WATCHDOG_USEC in ns, 0: none */
	int64_t last_wd;   /* CLOCK_MONOTONIC of the last WATCHDOG=1 */
} N = {.fd = -1};

static void notify_init(void)
{
	if (N.init)
		return;
	N.init = true;
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len = path ? strlen(path) : 0;
	if (len >= 2 && len < sizeof N.addr.sun_path && (path[0] == '/' || path[0] == '@')) {
		N.addr.sun_family = AF_UNIX;
		memcpy(N.addr.sun_path, path, len);
		if (path[0] == '@')
			N.addr.sun_path[0] = '\0';
		N.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	/* The watchdog is ours only if WATCHDOG_PID is unset or names us. */
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	if (usec && (!pid || strtol(pid, NULL, 10) == (long)getpid())) {
		long long u = strtoll(usec, NULL, 10);
		if (u > 0)
			N.wd_ns = u * 1000;
	}
}

int notify_send(const char *state)
{
	notify_init();
	if (!N.addrlen)
		return 0;
	if (N.fd < 0 && (N.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (sendto(N.fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&N.addr,
		   N.addrlen) < 0)
		return -errno;
	return 1;
}

int notify_ready(const char *status)
{
	char buf[512];
	snprintf(buf, sizeof buf, "READY=1%s%s", status ? "\nSTATUS=" : "", status ? status : "");
	N.last_wd = mono_ns();
	return notify_send(buf);
}

int notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int64_t notify_watchdog_interval(void)
{
	notify_init();
	return N.wd_ns && N.addrlen ? N.wd_ns / 2 : -1;
}

int notify_watchdog(void)
{
	notify_init();
	if (!N.wd_ns || !N.addrlen)
		return 0;
	int64_t now = mono_ns();
	if (now - N.last_wd < N.wd_ns / 4)
		return 0;
	N.last_wd = now;
	return notify_send("WATCHDOG=1");
}

int64_t notify_wait_ns(int64_t timeout_ns)
{
	int64_t wd = notify_watchdog_interval();
	if (wd < 0)
		return timeout_ns;
	return timeout_ns < 0 || timeout_ns > wd ? wd : timeout_ns;
}
