//  bus/herd_snapshot.h: serves snapshots of a server's store to the
//  neighbours that ask, after the ZeroMQ Guide's Clone pattern: PUB/SUB
//  loses what a subscriber misses, so a neighbour that lost updates asks
//  for our whole store and merges it newer-wins (bus/herd_peer.h says
//  when). This is the answering side; each herd_peer is an asking side.
//
//  The exchange, the asker's DEALER to our ROUTER ("sync" endpoint), in
//  bus/herd_sync_msg's messages, with credit-based flow control so a large
//  store goes in chunks and never floods the asker:
//      asker:      SYNC <id>               we may send S_CREDIT chunks ahead
//      answerer:   CHUNK <id> + lines      up to HERD_SYNC_CHUNK_LINES lines
//      asker:      MORE <id>               one chunk taken: one more credit
//      answerer:   DONE <id> <count>       all sent
//  Every message is one frame (libzmq 4.3 can lose its footing when a link
//  drops in the middle of a multipart message); the id tells a stale
//  answer from the current one.

#ifndef HERD_SNAPSHOT_H_INCLUDED
#define HERD_SNAPSHOT_H_INCLUDED

typedef struct _herd_snapshot_t herd_snapshot_t;

//  Binds the server's sync endpoint ("sync_bind", else "sync"), if the
//  config has one. store is what snapshots are read from (borrowed).
//  NULL and *error_p if the endpoint cannot be bound.
//  keys (borrowed, must outlive it) admit only listed keys.
herd_snapshot_t *
    herd_snapshot_new (herd_config_t *config, const char *server, herd_store_t *store,
                       herd_keys_t *keys, char **error_p);

void
    herd_snapshot_destroy (herd_snapshot_t **self_p);

//  Answers requests inside loop
void
    herd_snapshot_attach (herd_snapshot_t *self, zloop_t *loop);

//  Snapshots being sent now
size_t
    herd_snapshot_sessions (herd_snapshot_t *self);

//  Counters for STATS: snapshots going out, SYNCs refused at the total
//  bound, snapshots ended by a newer SYNC from the same server
void
    herd_snapshot_stats (herd_snapshot_t *self, json_t *stats);

void
    herd_snapshot_test (bool verbose);

#endif
