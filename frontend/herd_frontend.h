//  frontend/herd_frontend.h: the client side of one server, in three
//  classes: the listener (frontend/herd_listener) takes connections, the
//  client table (frontend/herd_connections) holds them and runs the loop pass,
//  and this class, the dispatch, says what each line means: an IAMAT to
//  the node's accept funnel, with its AT held until the pass's group
//  commit; a WHATSAT to the places broker (places/herd_places_asker),
//  the client held until the answer comes. It owns no replicated state:
//  it reaches the node only through the calls below (so frontend/ needs
//  nothing of node/ but these).

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
    //  Where WHATSATs are asked (the node's; the frontend takes its answers)
    herd_places_asker_t *places;
} herd_frontend_node_t;

//  Listens on the server's client address, inside loop. NULL and *error_p (one line) if it cannot listen.
herd_frontend_t *
    herd_frontend_new (herd_config_t *config, const char *server, zloop_t *loop,
                       const herd_frontend_node_t *node, char **error_p);

//  Closes every connection
void
    herd_frontend_destroy (herd_frontend_t **self_p);

//  The port it takes clients over TLS on, 0 if none
int
    herd_frontend_tls_port (herd_frontend_t *self);

//  Reads the TLS port's certificates, key and revocation list again
//  (SIGHUP): new connections use them. 0, or -1 and *error_p (the old
//  ones stay in use).
int
    herd_frontend_reload (herd_frontend_t *self, char **error_p);

//  The port it listens on for plain clients (the config may say 0: any
//  free one), 0 if that port is off
int
    herd_frontend_port (herd_frontend_t *self);

//  Puts the client side's counters into stats: its connections', and
//  commands by kind, bad lines, refusals, withdrawn ACKs
void
    herd_frontend_stats (herd_frontend_t *self, json_t *stats);

//  Connections open now
size_t
    herd_frontend_connections (herd_frontend_t *self);

//  Those connections, one object each (herd_connections_list); an empty list
//  for NULL. Caller owns.
json_t *
    herd_frontend_connection_list (herd_frontend_t *self);

//  Takes the client limits of config (the file read again at SIGHUP):
//  max_pending, max_clients, max_output_total, idle_timeout,
//  first_line_timeout, max_per_address (max_line needs a restart)
void
    herd_frontend_set_limits (herd_frontend_t *self, herd_config_t *config);

//  Logs traffic there from now on, or nowhere (NULL): herd/log_traffic
//  turned at SIGHUP
void
    herd_frontend_set_traffic (herd_frontend_t *self, herd_traffic_t *traffic);

void
    herd_frontend_test (bool verbose);

#endif
