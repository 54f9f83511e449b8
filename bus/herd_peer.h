//  bus/herd_peer.h: one neighbour, as zyre keeps one zyre_peer: its bus
//  stream (a SUB on its bus XPUB, watched by a zmonitor), its catch-up link (a
//  DEALER to its sync endpoint), the last sequence number it sent, when it
//  was last heard, and where our copy of its updates stands.
//
//  Where our copy of its updates stands is an explicit state machine:
//
//  LIVE     caught up, and nothing lost since
//  LOST     updates may be missing (at start, after a gap, silence or a
//           dropped link): catch up when the stream is next heard, since a
//           message proves our subscription live, so nothing can fall
//           between the snapshot and the stream
//  SYNCING  a snapshot is coming, in chunks merged newer-wins as they come
//  AGAIN    a snapshot is coming, and updates were lost since it was asked
//
//  The moves are data the code moves by: s_moves in bus/herd_peer.c, a
//  row per (state, event): a SYNC sent (LOST -> SYNCING), not taken (LOST),
//  no sync endpoint (LOST -> LIVE); updates lost (LIVE -> LOST, SYNCING ->
//  AGAIN); DONE (SYNCING -> LIVE, AGAIN -> LOST); a catch-up failed, no
//  progress for 5 s or MORE not taken (-> LOST); the link made again from
//  new sockets after 5 silent heartbeats (-> LOST) or after 2 failed
//  catch-ups (-> LOST, LIVE stays LIVE). CHUNKs move nothing: they are
//  merged while SYNCING or AGAIN, and ignored as stale otherwise.
//
//  AGAIN does not restart the catch-up at once: that would throw away the
//  chunks merged, and a stream of gaps could keep one from ever ending.
//  Updates lost show three ways: a gap in the neighbour's sequence numbers
//  (an HWM drop), three heartbeats with nothing heard (a partition), or
//  the monitor's DISCONNECTED (a restart).

#ifndef HERD_PEER_H_INCLUDED
#define HERD_PEER_H_INCLUDED

typedef struct _herd_peer_t herd_peer_t;

typedef enum {
    HERD_PEER_LOST,
    HERD_PEER_SYNCING,
    HERD_PEER_AGAIN,
    HERD_PEER_LIVE
} herd_peer_state_t;

//  Where a peer hands each line it received, not parsed (the receiver
//  compares it newer-wins before any other work): from its stream, or
//  from a snapshot (caught_up). Returns HERD_STORE_*; HERD_STORE_INVALID
//  for a line that is no AT line.
typedef int (herd_peer_accept_fn) (herd_peer_t *peer, const char *line, size_t size,
                                   bool caught_up, void *arg);

//  Connects to neighbour name's bus and sync endpoints as config says,
//  expecting name's public key there (keys, borrowed). NULL and *error_p
//  on a bad endpoint or a missing key.
herd_peer_t *
    herd_peer_new (herd_config_t *config, const char *name, herd_keys_t *keys, char **error_p);

void
    herd_peer_destroy (herd_peer_t **self_p);

//  Called after the peer handed a batch of updates to accept (a stream
//  wake-up or a catch-up chunk): the owner sends what they made it accept
typedef void (herd_peer_done_fn) (void *arg);

//  Reads the peer's sockets inside loop, handing updates to accept (with
//  arg), and calling done (with done_arg) after each batch of them
void
    herd_peer_attach (herd_peer_t *self, zloop_t *loop, herd_peer_accept_fn *accept, void *arg,
                      herd_peer_done_fn *done, void *done_arg);

//  The store the peer's lines go to, if any (borrowed): a batch's lines
//  ask for their clients' buckets a few lines ahead of their lookups
void
    herd_peer_set_store (herd_peer_t *self, herd_store_t *store);

//  Called once a heartbeat: notices silence and catch-ups that stalled
void
    herd_peer_check (herd_peer_t *self, int64_t now);

const char *
    herd_peer_name (herd_peer_t *self);

herd_peer_state_t
    herd_peer_state (herd_peer_t *self);

//  Catch-ups completed since start
size_t
    herd_peer_completed (herd_peer_t *self);

//  True if this peer can be caught up with (it has a sync endpoint)
bool
    herd_peer_syncable (herd_peer_t *self);

//  The link as JSON: "up" (connected, heard and understood), "syncing" (a
//  catch-up under way), "connected", "silent", "heard_ms_ago" (null:
//  never), "sequence" (its last), "state" (live, lost, syncing, again; or
//  incompatible while the neighbour speaks another bus format), "remade"
//  (times its sockets were made anew), "incompatible", "format" (the bus
//  format it speaks). Caller owns.
json_t *
    herd_peer_link (herd_peer_t *self, int64_t now);

//  The catch-up as JSON: {"syncing", "completed"}. Caller owns.
json_t *
    herd_peer_catch_up (herd_peer_t *self);

//  Updates taken from its stream since start, stored or not (the bus's
//  amplification: make scale divides their sum by the updates sent)
uint64_t
    herd_peer_heard (herd_peer_t *self);

//  Messages dropped since start for naming another sender than this
//  neighbour (a BATCH or HEARTBEAT headed with another server's name)
uint64_t
    herd_peer_wrong_sender (herd_peer_t *self);

//  Logs one line per batch received to traffic (borrowed; NULL: none),
//  and flushes it after each wake-up
void
    herd_peer_set_traffic (herd_peer_t *self, herd_traffic_t *traffic);

void
    herd_peer_test (bool verbose);

#endif
