//  bus/herd_bus.h: the update bus of one server (PROTOCOL.md section 2).
//  One PUB socket bound for neighbours and monitoring tools, one SUB
//  socket per neighbour. It runs inside the frontend's zloop, the loop
//  that owns the store, so an update needs no hand-off between threads.

#ifndef HERD_BUS_H_INCLUDED
#define HERD_BUS_H_INCLUDED

typedef struct _herd_bus_t herd_bus_t;

//  Called for each well-formed update from a neighbour. line is the AT
//  line (null-terminated, borrowed for the call); neighbour its sender.
typedef void (herd_bus_update_fn) (const char *neighbour, const char *line,
                                   size_t size, void *arg);

//  Binds the server's PUB endpoint and connects a SUB to each neighbour.
//  On failure returns NULL and sets *error_p to a one-line message.
herd_bus_t *
    herd_bus_new (herd_config_t *config, const char *server, char **error_p);

void
    herd_bus_destroy (herd_bus_t **self_p);

//  Delivers neighbours' updates to handler from inside loop
void
    herd_bus_attach (herd_bus_t *self, zloop_t *loop, herd_bus_update_fn *handler, void *arg);

//  Publishes an update the server accepted. Never blocks: past the HWM a
//  slow subscriber loses messages (ZeroMQ PUB semantics). 0 or -1.
int
    herd_bus_publish (herd_bus_t *self, const char *client, size_t client_size,
                      const char *line, size_t size);

//  The endpoint the PUB socket is bound to (resolved port). Borrowed.
const char *
    herd_bus_endpoint (herd_bus_t *self);

void
    herd_bus_test (bool verbose);

#endif
