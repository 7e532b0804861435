/* libslate: the component API of Clean Slate (the stable C ABI).
 *
 * A component is a program the Clean Slate runtime starts (`slate run`). By
 * linking libslate it gets channels that keep their messages when either end
 * or the runtime restarts, cheap heartbeats, and request/reply. The runtime
 * hands a component only the channel ends its system file grants it.
 *
 * Threads: the process-wide calls (slate_init, slate_ready, slate_heartbeat,
 * slate_last_error) may be called from any thread. An end (slate_tx,
 * slate_rx) is used by one thread at a time: a channel has a single producer
 * and a single consumer by design.
 *
 * Errors: calls return 0 (or a length) on success and a negative SLATE_E*
 * code on failure; slate_strerror(code) names the code and
 * slate_last_error() says what exactly failed, for the calling thread.
 *
 * Tutorial and reference: docs/component-api.md.
 */
#ifndef SLATE_SLATE_H_
#define SLATE_SLATE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SLATE_API __attribute__((visibility("default")))
#else
#define SLATE_API
#endif

#define SLATE_VERSION_MAJOR 0
#define SLATE_VERSION_MINOR 1

/* Error codes: always negative. */
#define SLATE_OK 0
#define SLATE_ENOTRUNTIME (-1) /* not started by a Clean Slate runtime */
#define SLATE_ENOTINIT (-2)    /* slate_init has not succeeded */
#define SLATE_EINVAL (-3)      /* a bad argument (NULL end, unknown id, ...) */
#define SLATE_ENOCHANNEL (-4)  /* the system file grants this component no such end */
#define SLATE_EBUSY (-5)       /* the end is already open */
#define SLATE_EFULL (-6)       /* send: the queue stayed full until the timeout */
#define SLATE_ETOOBIG (-7)     /* send: longer than the channel's max_message */
#define SLATE_ETIMEDOUT (-8)   /* recv/call: nothing arrived before the timeout */
#define SLATE_EMSGSIZE (-9)    /* recv/call: the buffer is too small for the message */
#define SLATE_ECORRUPT (-10)   /* the channel's memory broke its rules; the runtime was told */
#define SLATE_EPEERDOWN (-11)  /* the other end's component is down for good */
#define SLATE_ESYSTEM (-12)    /* a system call failed (slate_last_error has errno's text) */
#define SLATE_ENOTFOUND (-13)  /* state: no such key */
#define SLATE_ENOSTATE (-14)   /* state: the system file gives this component no state */
#define SLATE_ENOSPC (-15)     /* state: the store is full (state.size), or the txn too big */
#define SLATE_ETXN (-16)       /* state: the txn failed earlier, or one is already open */

/* "SLATE_EFULL: queue full", ... ; "unknown error" for other values. */
SLATE_API const char* slate_strerror(int code);

/* What the calling thread's last failing call found, e.g.
 * "slate_tx_open(\"results\"): this component is granted no such end;
 * it may send on: samples". Never NULL; "" before any failure. */
SLATE_API const char* slate_last_error(void);
/* The SLATE_E* code of the calling thread's last failing call (SLATE_OK
 * before any), for calls that return a pointer. */
SLATE_API int slate_last_error_code(void);

/* Attaches to the runtime: reads what it was handed (SLATE_COMPONENT,
 * NOTIFY_SOCKET, WATCHDOG_USEC, SLATE_CHANNELS) and checks it. Call once,
 * first; later calls return the first result. SLATE_ENOTRUNTIME when the
 * program was not started by `slate run` (slate_last_error says how to run
 * it). */
SLATE_API int slate_init(void);

/* This component's name ("filter", "worker@2"); NULL before slate_init. */
SLATE_API const char* slate_component(void);

/* Readiness, for `ready = "notify"` (sends READY=1). */
SLATE_API void slate_ready(void);

/* Liveness, for `heartbeat = "..."`. Cheap enough for every turn of a loop:
 * it reads the clock and sends a WATCHDOG=1 datagram only when a quarter of
 * the heartbeat period has passed since the last one. A no-op when the
 * component has no heartbeat. */
SLATE_API void slate_heartbeat(void);

/* A standby spare (`standby = N`) blocks here until promoted. Every other
 * process returns 0 at once (SLATE_ENOTINIT before slate_init). */
SLATE_API int slate_await_activation(void);

/* Channels. ------------------------------------------------------------ */

typedef struct slate_tx slate_tx; /* the producing end of a channel */
typedef struct slate_rx slate_rx; /* the consuming end */

/* Opens the end the system file grants this component ([channel.NAME] with
 * from = this component, resp. to = it). NULL if there is none, if it is
 * already open, or if the channel failed its checks: slate_last_error()
 * says which. Each end can be opened once per process. */
SLATE_API slate_tx* slate_tx_open(const char* channel);
SLATE_API slate_rx* slate_rx_open(const char* channel);
SLATE_API void slate_tx_close(slate_tx* tx);
/* Before sleeping on an empty (receive) or full (send) queue, ends opened
 * after this call poll the peer for up to `microseconds` first (default 2;
 * 0 sleeps at once). With the default, a request answered within 2 us costs
 * no futex wake-up (a round trip of about 0.3 us instead of about 11 us on a
 * 2-CPU machine); a wait that lasts longer costs up to that much CPU time
 * before the end sleeps. */
SLATE_API void slate_set_spin(unsigned microseconds);
SLATE_API void slate_rx_close(slate_rx* rx);

/* Queues a copy of msg. Blocks while the queue is full, up to timeout_ms
 * (negative: forever; 0: not at all): SLATE_EFULL at the deadline;
 * SLATE_EPEERDOWN at once if the queue is full and the consumer is down for
 * good (with room, the message is queued for its next process). SLATE_ETOOBIG
 * over max_message (nothing is sent). A process that dies inside
 * slate_send has sent the message whole or not at all. */
SLATE_API int slate_send(slate_tx* tx, const void* msg, size_t len, int timeout_ms);

/* Like slate_send, and stores the message's id (ids start at 1 and grow by
 * one per message, across restarts of either end) in *msg_id. */
SLATE_API int slate_send_id(slate_tx* tx, const void* msg, size_t len, int timeout_ms,
                            uint64_t* msg_id);

/* The id the next slate_send on this end will give its message (1 on a new
 * channel). A producer restarted after a crash resumes from here. */
SLATE_API uint64_t slate_next_id(const slate_tx* tx);

/* Copies the next message into buf and returns its length; *msg_id (if not
 * NULL) gets its id. Sleeps until a message arrives or timeout_ms passes
 * (negative: forever; 0: not at all): SLATE_ETIMEDOUT; SLATE_EPEERDOWN if
 * nothing is queued and the producer is down for good; SLATE_EMSGSIZE if
 * cap is too small (the message stays next; slate_max_message gives a
 * size that always fits). A message received and not acked when this
 * process dies is delivered again, in order, to the next process. */
SLATE_API long slate_recv(slate_rx* rx, void* buf, size_t cap, uint64_t* msg_id, int timeout_ms);

/* msg_id and every message before it are consumed (cumulative). */
SLATE_API int slate_ack(slate_rx* rx, uint64_t msg_id);

/* Counts the restarts of the other end: it changes each time another
 * process attaches there. Takes a slate_tx* or a slate_rx*; 0 for NULL. */
SLATE_API uint64_t slate_peer_epoch(const void* end);

/* The channel's max_message in bytes; 0 for NULL. */
SLATE_API size_t slate_max_message(const void* end);

/* Request/reply on a pair of channels: `requests` from the client to the
 * server and `replies` back. Over at-least-once channels it gives each
 * request exactly one answer: a request the server did not answer before
 * it died is delivered to its successor; one it answered and did not ack
 * is recognised by its id and not served twice; a stale reply is skipped.
 * A reply carries 8 bytes of header, so it may be up to max_message - 8
 * bytes of the replies channel. */

/* Client: sends the request and waits for its reply, all within timeout_ms
 * (negative: forever). Returns the reply's length copied into reply.
 * SLATE_EPEERDOWN at once, also while waiting, when the server is down for
 * good; SLATE_ETIMEDOUT (the request stays queued and is answered later;
 * that late reply is skipped); SLATE_EMSGSIZE if the reply was longer than
 * cap (it is consumed). */
/* Also SLATE_EFULL (the request could not be queued in time) and
 * SLATE_ETOOBIG (the request is over the requests channel's max_message). */
SLATE_API long slate_call(slate_tx* requests, slate_rx* replies, const void* req, size_t len,
                          void* reply, size_t cap, int timeout_ms);

/* Server: returns the next request to answer (its length; *req_id its id),
 * skipping (and acking) requests that a predecessor already answered. */
SLATE_API long slate_serve(slate_rx* requests, slate_tx* replies, void* buf, size_t cap,
                           uint64_t* req_id, int timeout_ms);

/* Server: sends the reply to req_id, then acks the request. Acks are
 * cumulative, so a server answers in the order slate_serve returned the
 * requests: req_id must be the last one it returned (SLATE_EINVAL else). */
SLATE_API int slate_reply(slate_rx* requests, slate_tx* replies, uint64_t req_id, const void* msg,
                          size_t len, int timeout_ms);

/* State. -------------------------------------------------------------- */

/* The component's own store ([component.X] state = {...}): LMDB under
 * state_dir/state/X, opened on first use. A committed change survives
 * kill -9 of this process and of the runtime; an uncommitted one vanishes.
 * Keys are NUL-terminated strings of 1..511 bytes; values any bytes.
 * SLATE_ENOSTATE if the system file gives the component no state. One
 * thread at a time per process uses the state calls (they share one store
 * handle); a transaction belongs to the thread that began it. */

/* Each is its own transaction. */
SLATE_API int slate_state_put(const char* key, const void* val, size_t len);
/* Copies up to cap bytes of the value and returns its full length (more
 * than cap means it was cut short); SLATE_ENOTFOUND if there is no such key. */
SLATE_API long slate_state_get(const char* key, void* buf, size_t cap);
/* SLATE_ENOTFOUND if there was no such key. */
SLATE_API int slate_state_del(const char* key);

/* Calls fn for each key starting with prefix, in key order, on one
 * snapshot; fn returns 0 to go on, anything else to stop. */
typedef int (*slate_visit_fn)(const char* key, size_t key_len, const void* val, size_t val_len,
                              void* arg);
SLATE_API int slate_state_foreach(const char* prefix, slate_visit_fn fn, void* arg);

/* A write transaction: all of its changes are committed together or not at
 * all. One at a time per process (SLATE_ETXN for a second). Commit and abort
 * free it. */
typedef struct slate_txn slate_txn;
SLATE_API slate_txn* slate_txn_begin(void); /* NULL: see slate_last_error */
SLATE_API int slate_txn_put(slate_txn* txn, const char* key, const void* val, size_t len);
SLATE_API long slate_txn_get(slate_txn* txn, const char* key, void* buf, size_t cap);
SLATE_API int slate_txn_del(slate_txn* txn, const char* key);
SLATE_API int slate_txn_commit(slate_txn* txn);
SLATE_API void slate_txn_abort(slate_txn* txn);

#ifdef __cplusplus
}
#endif

#endif /* SLATE_SLATE_H_ */
