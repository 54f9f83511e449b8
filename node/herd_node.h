//  node/herd_node.h: one herd server's node (a zactor): the owner of the
//  update path. It holds the store, the journal, the bus (with a
//  herd_peer per neighbour), the snapshot server, the admin endpoint,
//  and the frontend, all in one zloop, one thread, no locks. Every
//  update, from a client, a neighbour's stream or a catch-up, enters
//  through one funnel, s_funnel: newer-wins into the store, journaled,
//  flooded.
//
//  Admin requests, a DEALER to the "admin" endpoint, one frame each way:
//      STATE   -> {"server", "clients", "tombstones", "store_full", "digest", "caught_up",
//                  "links" (each neighbour's, bus/herd_peer.h), "catch_up"}
//      STATS   -> {"server", and every counter of core/herd_counters.h at
//                  its path}
//      CLIENTS <cursor> [<count>] -> {"cursor": the next (0: done), "clients":
//                  [lines held]}: the store a page at a time, as SCAN
//      CLIENT <id> -> {"client", "line": held (AT or GONE) or null}
//      CONNECTIONS -> {"connections": [{"id", "address", "tls", "age_s", "idle_s",
//                  "pending", "state", "grants"}]}: the clients connected now
//      FORGET <client> -> {"forgot", "line": its GONE line} or {"error"}:
//                  forgets client at now (or its newest held time, if
//                  later), as a client's FORGET would; a server's key only
//
//  Commands on the pipe:
//      START               -> "OK" or "ERROR <one-line reason>"
//      PORT                -> the client port, in decimal
//      HTTP PORT           -> the HTTP endpoint's port, in decimal (0: none)
//      TLS PORT            -> the TLS client port, in decimal (0: none)
//      RELOAD, config      (SIGHUP; then a signal) reads the TLS
//                          certificates and CRL again (a failure is
//                          logged, the old ones kept), and applies what
//                          config (the file read again, or NULL) changes
//                          that can change at run time; logs the rest
//      $TERM

#ifndef HERD_NODE_H_INCLUDED
#define HERD_NODE_H_INCLUDED

//  What the actor is started with; read before zactor_new returns
typedef struct {
    herd_config_t *config;      //  Borrowed, must outlive the actor
    const char *server;         //  Our server's name
    herd_offline_t *offline;    //  The places broker's offline data, or NULL:
                                //  WHATSAT answered from it in the loop
                                //  (borrowed, must outlive the actor)
} herd_node_args_t;

//  zactor_new (herd_node_actor, &args)
void
    herd_node_actor (zsock_t *pipe, void *args);

void
    herd_node_test (bool verbose);

#endif
