/* endpoint.h - where records come from and go to, behind one interface.
 *
 *   ring:NAME             a shared-memory ring (input: a consumer slot; output: the producer)
 *   -                     stdin/stdout: a MessagePack stream, or JSON lines with json set
 *   zmq+tcp://HOST:PORT   ZeroMQ: an output binds a PUB, an input connects a SUB
 *   zmq+ipc://PATH        the same over a Unix socket
 *
 * Over ZeroMQ each record is two frames, the topic "t/s" (e.g. "bar/ES") and
 * the MessagePack map, so a subscriber can filter by type and symbol.
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
	uint32_t type;        /* enum mdb_rtype */
	uint32_t len;
	const uint8_t *data;
	int input;            /* index of the input it came from */
	uint64_t pos;         /* ring position of the record (ring inputs), else 0 */
};

struct ep_opts {
	const char *name;          /* consumer name in input rings */
	bool json_in;              /* stdin carries JSON lines */
	bool json_out;             /* stdout carries JSON lines */
	enum ring_kind kind;       /* input rings: RING_DURABLE (default) or RING_OBSERVER */
	enum ring_from from;       /* where a new consumer starts */
	int64_t spin_ns;           /* spin before sleeping; < 0 forever */
	uint64_t ring_capacity;    /* an output ring that does not exist is made this big */
	mode_t ring_mode;          /* ... with this mode */
	int64_t publish_timeout_ns;/* how long a ring output waits for durable consumers; < 0 forever */
	const char *zmq_topic;     /* SUB filter prefix ("" or NULL: everything) */
	int zmq_hwm;               /* ZeroMQ high-water mark in messages (0: library default) */
	bool manual_release;       /* durable input rings advance only in inputs_release() */
	bool batch_out;            /* output rings publish in outputs_flush() (and before a
				      wait for space), not per record: the caller flushes
				      every few records and before it sleeps */
	bool no_create;            /* input rings must exist (mdb-tap: a typo is an error) */
	_Atomic uint32_t *stop_word; /* waits end with -EINTR once this is non-zero */
	int stop_fd;               /* ... or this fd is readable (-1: none) */
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

/* The ring consumer of input i, or NULL if it is not a ring. */
mdb_ring_consumer *inputs_ring(mdb_inputs *in, int i);

void inputs_close(mdb_inputs **in);

mdb_outputs *outputs_open(const char *const *uris, int n, const struct ep_opts *o, int *err,
			  char *errbuf, size_t errlen);

/* Write m to every output. Returns 0, or the first -errno (each output is
 * still tried). A record that a JSON output cannot render is -EBADMSG. */
int outputs_write(mdb_outputs *out, const struct mdb_msg *m);

/* Push buffered stdout bytes out, and publish batched ring records
 * (batch_out). Call when the inputs go idle. */
int outputs_flush(mdb_outputs *out);

void outputs_close(mdb_outputs **out);

#endif
