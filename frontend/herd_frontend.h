//  frontend/herd_frontend.h: the client side of one server: the TCP
//  listener, the connections (frontend/herd_connection), their limits,
//  command dispatch, and the WHATSAT round trip to the places broker.
//  It runs in the node's loop and owns no replicated state: an IAMAT goes
//  to the node's accept funnel, a WHATSAT reads the node's store, through
//  the calls below (so frontend/ needs nothing of node/ but these).
//
//  Why epoll inside zloop: zloop polls its sockets with zmq_poll, which
//  costs O(n) per wake-up in the number of items, fine for a few sockets
//  but not for thousands of clients. So every client fd lives in one
//  epoll set, and that set's fd is one zloop item: a wake-up costs
//  O(ready clients), the way Redis's ae loop does.

#ifndef HERD_FRONTEND_H_INCLUDED
#define HERD_FRONTEND_H_INCLUDED

typedef struct _herd_frontend_t herd_frontend_t;

//  What the frontend asks of the node that owns the store
typedef struct {
    //  An IAMAT's AT line, built and parsed once: newer-wins into the
    //  store, journaled and flooded. Returns HERD_STORE_*.
    int (*accept) (const herd_at_t *at, void *arg);
    //  The AT line held for client, and its fields; NULL if none.
    //  Borrowed until the next accept.
    const char *(*lookup) (const char *client, herd_at_t *at, void *arg);
    //  Makes what accept took durable, before any reply acknowledges it
    //  (group commit: once per loop pass, for all clients). -1 if it
    //  could not: the pass's AT replies are then answered "?" instead.
    int (*commit) (void *arg);
    void *arg;
    //  Where every line in and out is logged, or NULL (herd/log_traffic
    //  off); the frontend flushes it after each pass
    herd_traffic_t *traffic;
} herd_frontend_node_t;

//  Listens on the server's client address and talks to its places broker,
//  inside loop. NULL and *error_p (one line) if it cannot listen.
herd_frontend_t *
    herd_frontend_new (herd_config_t *config, const char *server, zloop_t *loop,
                       const herd_frontend_node_t *node, char **error_p);

//  Closes every connection
void
    herd_frontend_destroy (herd_frontend_t **self_p);

//  The port it listens on (the config may say 0: any free one)
int
    herd_frontend_port (herd_frontend_t *self);

//  Client counters as JSON: connections open and total, commands by
//  kind, bad lines. Caller owns.
json_t *
    herd_frontend_stats (herd_frontend_t *self);

//  Connections open now
size_t
    herd_frontend_connections (herd_frontend_t *self);

void
    herd_frontend_test (bool verbose);

#endif
