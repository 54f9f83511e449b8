//  bus/herd_catchup.h: the catch-up client of one neighbour, beside its
//  server (bus/herd_snapshot): a DEALER to the neighbour's sync endpoint
//  that asks for a snapshot (SYNC), merges each CHUNK through a handler,
//  asks for the next (MORE), and tells when it is DONE (docs/PROTOCOL.md
//  section 4). One request at a time: asking anew, or cancelling, makes
//  every later answer to the one before stale, and stale answers are
//  ignored, so a late chunk never counts as a catch-up.

#ifndef HERD_CATCHUP_H_INCLUDED
#define HERD_CATCHUP_H_INCLUDED

typedef struct _herd_catchup_t herd_catchup_t;

//  What the owner is told, in the loop
typedef struct {
    //  A line of the snapshot, not parsed: HERD_STORE_* as the receiver
    //  took it (HERD_STORE_INVALID: not an AT line, counted as no line;
    //  logging it is the owner's)
    int (*line) (const char *line, size_t size, void *arg);
    //  A chunk's lines were all handed over
    void (*merged) (void *arg);
    //  The snapshot is whole
    void (*done) (void *arg);
    //  It cannot go on (why: static text)
    void (*failed) (const char *why, void *arg);
    void *arg;
} herd_catchup_handler_t;

//  A DEALER to endpoint, a CURVE client expecting server's key (keys,
//  borrowed). NULL and *error_p if that key is missing.
herd_catchup_t *
    herd_catchup_new (const char *server, const char *endpoint, herd_keys_t *keys, char **error_p);

void
    herd_catchup_destroy (herd_catchup_t **self_p);

//  Reads the answers in loop, telling handler (copied)
void
    herd_catchup_attach (herd_catchup_t *self, zloop_t *loop, const herd_catchup_handler_t *handler);

//  Takes its socket out of the loop before it is destroyed, from a
//  handler of the running loop
void
    herd_catchup_retire (herd_catchup_t *self);

//  Asks for a snapshot: 0, or -1 if the link did not take the request
//  (a neighbour that is down: nothing is under way then)
int
    herd_catchup_ask (herd_catchup_t *self);

//  Gives up the request under way: its answers are stale from now
void
    herd_catchup_cancel (herd_catchup_t *self);

//  A request is under way
bool
    herd_catchup_active (herd_catchup_t *self);

//  zclock_mono of the request's start and of its last chunk
int64_t
    herd_catchup_started (herd_catchup_t *self);
int64_t
    herd_catchup_progress (herd_catchup_t *self);

//  Lines of this request so far, and of those the ones new to us
size_t
    herd_catchup_received (herd_catchup_t *self);
size_t
    herd_catchup_fresh (herd_catchup_t *self);

void
    herd_catchup_test (bool verbose);

#endif
