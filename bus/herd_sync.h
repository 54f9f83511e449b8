//  bus/herd_sync.h: catch-up between neighbours, after the ZeroMQ Guide's
//  Clone pattern. PUB/SUB loses what a subscriber misses; so when a link
//  is (re)established, or a gap or silence shows updates were lost, a
//  server asks that neighbour for a snapshot of its store and merges it
//  newer-wins. It asks only once the neighbour's stream is flowing to it
//  (the bus says so), so nothing falls between snapshot and stream.
//
//  The exchange, a DEALER per neighbour to the neighbour's ROUTER ("sync"
//  endpoint), with credit-based flow control so a large store goes in
//  chunks and never floods the asker. Every message is one frame (libzmq
//  4.3 can lose its footing when a link drops in the middle of a
//  multipart message), text, id in decimal:
//      asker:      "SYNC <id>"                 start; the answerer may
//                                              send S_CREDIT chunks ahead
//      answerer:   "CHUNK <id>\n<AT line>\n..."  up to 500 lines
//      asker:      "MORE <id>"                 one chunk taken: one more credit
//      answerer:   "DONE <id> <count>"         all sent
//  id tells a stale answer from the current one.

#ifndef HERD_SYNC_H_INCLUDED
#define HERD_SYNC_H_INCLUDED

typedef struct _herd_sync_t herd_sync_t;

//  An update from a neighbour's snapshot; returns true if it was new here
typedef bool (herd_sync_merge_fn) (const char *neighbour, const char *line, size_t size, void *arg);

//  A catch-up with neighbour failed or timed out
typedef void (herd_sync_failed_fn) (const char *neighbour, void *arg);

//  Binds the server's sync endpoint (if configured) and connects to each
//  neighbour's. store is where snapshots are read from (borrowed).
//  NULL and *error_p if the endpoint cannot be bound.
herd_sync_t *
    herd_sync_new (herd_config_t *config, const char *server, herd_store_t *store,
                   char **error_p);

void
    herd_sync_destroy (herd_sync_t **self_p);

void
    herd_sync_attach (herd_sync_t *self, zloop_t *loop, herd_sync_merge_fn *merge,
                      herd_sync_failed_fn *failed, void *arg);

//  Asks neighbour for its snapshot; if one is coming already, asks again
//  once it is done
void
    herd_sync_request (herd_sync_t *self, const char *neighbour, const char *why);

//  True once a first catch-up has completed (or there is no one to ask)
bool
    herd_sync_caught_up (herd_sync_t *self);

//  Catch-ups by neighbour as JSON. Caller owns.
json_t *
    herd_sync_state (herd_sync_t *self);

void
    herd_sync_test (bool verbose);

#endif
