//  bus/herd_bus.h: the update bus of one server (docs/PROTOCOL.md section 2):
//  one publishing socket (an XPUB) bound for neighbours and monitoring tools, and one
//  herd_peer per neighbour (its stream and its catch-up). It runs inside
//  the node's loop, the loop that owns the store, so an update needs no
//  hand-off between threads.
//
//  Updates go out in batches: herd_bus_publish adds one to the pass's
//  batch, herd_bus_flush sends it as one message (herd_bus_msg has the
//  format). The node flushes at the end of each client pass, the bus
//  after each batch its peers take in, and before each heartbeat.

#ifndef HERD_BUS_H_INCLUDED
#define HERD_BUS_H_INCLUDED

typedef struct _herd_bus_t herd_bus_t;

//  Binds the server's bus endpoint (an XPUB) and makes a herd_peer per neighbour.
//  On failure returns NULL and sets *error_p to a one-line message.
//  keys (borrowed, must outlive the bus) secure the XPUB and the peers.
herd_bus_t *
    herd_bus_new (herd_config_t *config, const char *server, herd_keys_t *keys, char **error_p);

void
    herd_bus_destroy (herd_bus_t **self_p);

//  Reads the peers inside loop, handing their updates to accept, and
//  starts the heartbeat
void
    herd_bus_attach (herd_bus_t *self, zloop_t *loop, herd_peer_accept_fn *accept, void *arg);

//  The store accepted lines go to (borrowed), for the peers to prefetch
//  (herd_peer_set_store)
void
    herd_bus_set_store (herd_bus_t *self, herd_store_t *store);

//  Logs each batch received to traffic (borrowed; NULL: none). Its owner
//  flushes it each loop pass; the peers flush after each batch.
void
    herd_bus_set_traffic (herd_bus_t *self, herd_traffic_t *traffic);

//  Adds an update the server accepted to this pass's batch (a full batch
//  is sent first)
void
    herd_bus_publish (herd_bus_t *self, const herd_at_t *at);

//  Sends this pass's batch, if it holds anything. Never blocks: past the
//  HWM a slow subscriber loses batches, sees the gap and catches up.
void
    herd_bus_flush (herd_bus_t *self);

//  True once a first catch-up with some neighbour has completed (or there
//  is no neighbour to catch up with)
bool
    herd_bus_caught_up (herd_bus_t *self);

//  The links as JSON: {name: herd_peer_link}. Caller owns.
json_t *
    herd_bus_links (herd_bus_t *self);

//  Catch-ups as JSON: {name: herd_peer_catch_up}. Caller owns.
json_t *
    herd_bus_catch_ups (herd_bus_t *self);

//  Updates received from all neighbours' streams, stored or not
uint64_t
    herd_bus_heard (herd_bus_t *self);

//  Messages dropped from all neighbours for naming another sender
uint64_t
    herd_bus_wrong_sender (herd_bus_t *self);

//  Times the bus's subscriptions outgrew their bound (a key subscribing
//  many prefixes) and every neighbour was dropped
uint64_t
    herd_bus_rebinds (herd_bus_t *self);

//  Updates published since start
uint64_t
    herd_bus_published (herd_bus_t *self);

//  Batches (bus messages) sent since start
uint64_t
    herd_bus_batches (herd_bus_t *self);

void
    herd_bus_test (bool verbose);

#endif
