/* endpoint.h - where records come from and go to, behind one interface.
 *
 *   ring:NAME             a shared-memory ring (input: a consumer slot; output: the producer)
 *   -                     stdin/stdout: a MessagePack stream, or JSON lines with json set
 *   zmq+tcp://HOST:PORT   ZeroMQ: an output binds a PUB, an input connects a SUB
 *   zmq+ipc://PATH        the same over a Unix socket
 *
 * Over ZeroMQ each record is two frames, the topic "t/s" (e.g. "bar/ES") and
 * the MessagePack map, so a subscriber can filter by type and symbol. With
 * zmq_seq a record read from a ring carries a third frame, its sequence:
 * 24 bytes, little-endian u64 {ring_id, prev, pos} (pos: where the record
 * starts in the sender's ring; prev: where the sender's reader stood before
 * it, the end of the record sent before). A receiver that knows where the
 * last record it took ended sees a gap as prev beyond it, and asks a replay
 * server (replay_serve) for the missing range. So that a gap at the end of
 * a burst is seen too, an idle sender sends heartbeats: the topic "" and a
 * sequence frame {ring_id, end, end} (end: all before it has been sent).
 *
 *   request (DEALER -> ROUTER), one frame of 32 bytes:
 *       u64 id, u64 ring_id, u64 from, u64 to      replay [from, to)
 *   reply, per record: u64 id, u32 1, u32 0 | record | sequence frame
 *   reply, last:       u64 id, u32 2, u32 status | u64 next
 *       status REPLAY_DONE, REPLAY_MORE (ask again from next),
 *       REPLAY_OVERWRITTEN (next: the oldest record left), REPLAY_OTHER_RING,
 *       REPLAY_BAD (not a record boundary of that ring)
 *
 * An mdb_inputs reads several endpoints (fan-in); an mdb_outputs writes every
 * record to several (fan-out). Neither allocates per record.
 */
#ifndef MDB_ENDPOINT_H
#define MDB_ENDPOINT_H

#include "record.h"
#include "ring.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One record in transit. data is a MessagePack map and stays valid until the
 * next inputs_read(). */
struct mdb_msg {
	uint32_t type; /* enum mdb_rtype */
	uint32_t len;
	const uint8_t *data;
	int input;     /* index of the input it came from */
	uint64_t pos;  /* ring position of the record (ring inputs, and ZeroMQ
			  inputs with a sequence frame: the sender's), else 0 */
	uint64_t prev; /* ... where that ring's reader stood before it */
	uint64_t src;  /* ... ring_id() of that ring; 0: no sequence */
};

enum replay_status {
	REPLAY_DONE = 0,
	REPLAY_MORE = 1,
	REPLAY_OVERWRITTEN = 2,
	REPLAY_OTHER_RING = 3,
	REPLAY_BAD = 4,
};

struct ep_opts {
	const char *name;	     /* consumer name in input rings */
	bool json_in;		     /* stdin carries JSON lines */
	bool json_out;		     /* stdout carries JSON lines */
	enum ring_kind kind;	     /* input rings: RING_DURABLE (default) or RING_OBSERVER */
	enum ring_from from;	     /* where a new consumer starts */
	int64_t spin_ns;	     /* spin before sleeping; < 0 forever */
	uint64_t ring_capacity;	     /* an output ring that does not exist is made this big */
	mode_t ring_mode;	     /* ... with this mode */
	int64_t publish_timeout_ns;  /* how long a ring output waits for durable consumers; < 0
					forever */
	const char *zmq_topic;	     /* SUB filter prefix ("" or NULL: everything) */
	int zmq_hwm;		     /* ZeroMQ high-water mark in messages (0: library default) */
	bool manual_release;	     /* durable input rings advance only in inputs_release() */
	bool batch_out;		     /* output rings publish in outputs_flush() (and before a
					wait for space), not per record: the caller flushes
					every few records and before it sleeps */
	bool no_create;		     /* input rings must exist (mdb-tap: a typo is an error) */
	_Atomic uint32_t *stop_word; /* waits end with -EINTR once this is non-zero */
	int stop_fd;		     /* ... or this fd is readable (-1: none) */
	bool zmq_seq;		     /* ZeroMQ outputs add the sequence frame to ring records */
	const char *zmq_replay;	     /* ZeroMQ input: the replay server to ask for gaps */
	bool zmq_cursor;	     /* ... and keep where it is in $MDB_SHM_DIR/zcursor/NAME.pos */
};

/* What a ZeroMQ input with a replay server has seen. */
struct ep_zstats {
	uint64_t gaps;	   /* gaps detected */
	uint64_t replayed; /* records received by replay */
	uint64_t dups;	   /* records dropped as already received */
	uint64_t lost;	   /* gaps (or parts) the sender could no longer replay */
};

/* Defaults: durable, from the end, 20 us spin, 64 MiB rings of mode 0660,
 * wait forever for space; the stop word and fd of cli_catch_signals(), so a
 * stop signal always ends a wait. */
void ep_opts_default(struct ep_opts *o);

/* Check an endpoint's syntax. Returns 0 or -EINVAL with *why set. */
int ep_parse_check(const char *uri, const char **why);

typedef struct mdb_inputs mdb_inputs;
typedef struct mdb_outputs mdb_outputs;

/* Open every input. On failure returns NULL, *err = -errno and a message in
 * errbuf naming the endpoint. */
mdb_inputs *inputs_open(const char *const *uris, int n, const struct ep_opts *o, int *err,
			char *errbuf, size_t errlen);

/* Next record from any input. Returns 1 with *m set; 0 when nothing came
 * within timeout_ns (0: do not wait, < 0: forever); -EPIPE when every input
 * has ended (stdin at EOF); -EBADMSG when a malformed record was skipped
 * (m->data/len hold its bytes, inputs_error() says why); -EINTR; -errno.
 * Ring laps are counted, not reported. */
int inputs_read(mdb_inputs *in, struct mdb_msg *m, int64_t timeout_ns);

/* Why the last -EBADMSG happened ("stdin offset 120: not a map"). */
const char *inputs_error(const mdb_inputs *in);

/* Release what has been read so far in durable input rings (after the
 * records have been written on). */
void inputs_release(mdb_inputs *in);

/* Observer laps suffered by ring inputs, summed. */
uint64_t inputs_laps(const mdb_inputs *in);

/* Sum the replay statistics of the ZeroMQ inputs into *st. */
void inputs_zstats(const mdb_inputs *in, struct ep_zstats *st);

/* The next notice worth a log line (a gap, a replay, a recreated sender
 * ring), or NULL; each is returned once. Library code does not log. */
const char *inputs_notice(mdb_inputs *in);

/* Where ring input i stands: its ring_id() and the consumer's position.
 * Returns 0, or -EINVAL when input i is not a ring. */
int inputs_position(const mdb_inputs *in, int i, uint64_t *src, uint64_t *pos);

/* The ring consumer of input i, or NULL if it is not a ring. */
mdb_ring_consumer *inputs_ring(mdb_inputs *in, int i);

void inputs_close(mdb_inputs **in);

mdb_outputs *outputs_open(const char *const *uris, int n, const struct ep_opts *o, int *err,
			  char *errbuf, size_t errlen);

/* Write m to every output. Returns 0, or the first -errno (each output is
 * still tried). A record that a JSON output cannot render is -EBADMSG. */
int outputs_write(mdb_outputs *out, const struct mdb_msg *m);

/* Encode in place: when the only output is a ring with batch_out, reserve
 * room for a record of type and at most max bytes there and point *dst at
 * it; outputs_commit() then takes its first len bytes. Waits for durable
 * consumers as outputs_write() does. Returns 0, -ENOTSUP (any other outputs:
 * use outputs_write), -ETIMEDOUT, -EMSGSIZE. */
int outputs_claim(mdb_outputs *out, uint32_t type, uint32_t max, void **dst);
void outputs_commit(mdb_outputs *out, uint32_t len);

/* Send a heartbeat {src, pos, pos} on the ZeroMQ outputs (with zmq_seq):
 * everything before pos in ring src has been sent. Returns 0 or -errno. */
int outputs_heartbeat(mdb_outputs *out, uint64_t src, uint64_t pos);

/* Push buffered stdout bytes out, and publish batched ring records
 * (batch_out). Call when the inputs go idle. */
int outputs_flush(mdb_outputs *out);

void outputs_close(mdb_outputs **out);

typedef struct mdb_replay mdb_replay;

/* Serve replay requests for ring NAME on ZeroMQ address addr ("tcp://...",
 * "ipc://..."; a ROUTER socket) from a thread of its own, reading the ring
 * as observer `name` (a free slot; it never holds the producer). On failure
 * returns NULL, *err = -errno and a message in errbuf. */
mdb_replay *replay_serve(const char *ring_name, const char *addr, const char *name, int *err,
			 char *errbuf, size_t errlen);

/* Records the server has sent, requests served. */
void replay_stats(const mdb_replay *rs, uint64_t *records, uint64_t *requests);

/* Stop the thread and close. Accepts NULL; sets *rs to NULL. */
void replay_close(mdb_replay **rs);

#endif
