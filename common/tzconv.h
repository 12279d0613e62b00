/* tzconv.h - wall-clock times of a named time zone to UTC, from the
 * system's TZif files (/usr/share/zoneinfo, or $TZDIR).
 *
 * Alpha Vantage and Twelve Data send bar times as local strings
 * ("2024-03-08 15:59:00") with a zone name ("US/Eastern"). The C library's
 * way (setenv TZ, tzset, mktime) changes process-wide state and re-reads
 * the zone file whenever the zone changes; this module reads each zone once
 * into an immutable object, so a conversion is a binary search and has no
 * side effects. Times past the file's last transition follow its POSIX TZ
 * footer ("EST5EDT,M3.2.0,M11.1.0"), so slim zone files work too.
 */
#ifndef MDB_TZCONV_H
#define MDB_TZCONV_H

#include <stddef.h>
#include <stdint.h>

#define TZ_NAME_MAX 64 /* zone name, NUL included */

typedef struct mdb_tz mdb_tz;

/* Parse TZif data (version 1, 2 or 3) from buf[0..len). Returns the zone or
 * NULL with *err = -EINVAL (malformed) or -ENOMEM. */
mdb_tz *tz_parse(const uint8_t *buf, size_t len, int *err);

/* Load the zone called name ("America/New_York", "UTC") from $TZDIR or
 * /usr/share/zoneinfo. Names with "..", a leading '/', or bytes outside
 * [A-Za-z0-9/_+-] are refused with -EINVAL before any file is opened.
 * Returns NULL with *err = -errno on failure. */
mdb_tz *tz_load(const char *name, int *err);

void tz_free(mdb_tz **z);

/* UTC offset in seconds (local = utc + offset) in force at utc_s. */
int32_t tz_offset_at(const mdb_tz *z, int64_t utc_s);

/* Convert a wall-clock time, given as seconds since 1970-01-01 00:00 of that
 * wall clock (what timegm() of its broken-down fields gives), to UTC
 * seconds. A time repeated when clocks go back is taken at its first
 * occurrence; a time skipped when they go forward is read with the offset
 * in force before the change (02:30 on a spring-forward night becomes
 * 03:30 summer time). */
int64_t tz_local_to_utc(const mdb_tz *z, int64_t local_s);

/* The same, but a repeated time is taken at its second occurrence: for a
 * series known to ascend, where the second 01:30 of a fall-back night
 * follows the first. */
int64_t tz_local_to_utc_later(const mdb_tz *z, int64_t local_s);

/* Parse "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD" (nothing else after it) into
 * wall-clock seconds as above. Returns 0 or -EINVAL. */
int tz_parse_datetime(const char *s, int64_t *local_s);

/* A cache of loaded zones by name: each zone file is read once. */
typedef struct mdb_tzcache mdb_tzcache;
mdb_tzcache *tzcache_new(void);
/* The zone called name, loaded on first use; NULL with *err as tz_load(). The
 * zone is owned by the cache. A name that failed is not retried. */
const mdb_tz *tzcache_get(mdb_tzcache *c, const char *name, int *err);
void tzcache_free(mdb_tzcache **c);

#endif
