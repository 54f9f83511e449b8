//  node/herd_http.h: a server's operator endpoint over HTTP, for
//  monitoring stacks and orchestrators:
//      /metrics    every STATS counter and gauge, and every link's state,
//                  in the Prometheus text exposition format (0.0.4)
//      /healthz    200 while the node answers (alive), else 503
//      /readyz     200 once caught up and serving, else 503
//  libmicrohttpd serves it from a thread of its own; that thread asks the
//  node for its numbers over the node's admin ROUTER on inproc (STATE,
//  STATS), as any admin client does: no memory is shared with the loop.

#ifndef HERD_HTTP_H_INCLUDED
#define HERD_HTTP_H_INCLUDED

typedef struct _herd_http_t herd_http_t;

//  Listens on bind (HOST:PORT; port 0 takes a free one) for server, and
//  asks the node at admin (its inproc endpoint). NULL and *error_p (one
//  line) if it cannot listen.
herd_http_t *
    herd_http_new (const char *server, const char *bind, const char *admin, char **error_p);

void
    herd_http_destroy (herd_http_t **self_p);

//  Ends connections open longer than any request may take: the node
//  calls it once a second, so they end whoever comes next or not
void
    herd_http_sweep (herd_http_t *self);

//  The port it listens on
int
    herd_http_port (herd_http_t *self);

//  The Prometheus text for a server's STATS and STATE answers. Caller frees.
char *
    herd_http_metrics (const char *server, json_t *stats, json_t *state);

void
    herd_http_test (bool verbose);

#endif
