//  bus/herd_bus.h: the update bus of one server (PROTOCOL.md section 2).
//  One PUB socket bound for neighbours and monitoring tools, one SUB
//  socket per neighbour. It runs inside the frontend's zloop, the loop
//  that owns the store, so an update needs no hand-off between threads.
//
//  Messages on a server's PUB socket (see README, "The update bus"):
//      update:     [client id][AT line][sequence]
//      heartbeat:  [""][HEARTBEAT][server name][sequence]
//  The sequence counts the updates this server has published since it
//  started; a heartbeat repeats the last one. A subscriber that sees a
//  number skipped, or hears nothing for three heartbeats, has lost
//  updates (an HWM drop, a cut link, a restart) and must catch up.

#ifndef HERD_BUS_H_INCLUDED
#define HERD_BUS_H_INCLUDED

typedef struct _herd_bus_t herd_bus_t;

//  Called for each well-formed update from a neighbour. line is the AT
//  line (null-terminated, borrowed for the call); neighbour its sender.
typedef void (herd_bus_update_fn) (const char *neighbour, const char *line,
                                   size_t size, void *arg);

//  Called when a neighbour's stream is live again after a start, a lost
//  link or a gap: time to catch up with it (the subscription is active,
//  so nothing published from now on can fall between snapshot and stream)
typedef void (herd_bus_resync_fn) (const char *neighbour, const char *why, void *arg);

//  Binds the server's PUB endpoint and connects a SUB to each neighbour.
//  On failure returns NULL and sets *error_p to a one-line message.
herd_bus_t *
    herd_bus_new (herd_config_t *config, const char *server, char **error_p);

void
    herd_bus_destroy (herd_bus_t **self_p);

//  Delivers neighbours' updates and resync calls from inside loop, and
//  starts the heartbeat and the link monitors
void
    herd_bus_attach (herd_bus_t *self, zloop_t *loop, herd_bus_update_fn *update,
                     herd_bus_resync_fn *resync, void *arg);

//  Publishes an update the server accepted. Never blocks: past the HWM a
//  slow subscriber loses messages, and sees the gap. 0 or -1.
int
    herd_bus_publish (herd_bus_t *self, const char *client, size_t client_size,
                      const char *line, size_t size);

//  A catch-up with neighbour failed: ask for another on its next message
void
    herd_bus_expect_resync (herd_bus_t *self, const char *neighbour);

//  The links as JSON: {name: {"connected", "heard_ms_ago", "sequence"}}.
//  Caller owns.
json_t *
    herd_bus_links (herd_bus_t *self);

//  Updates published since start
uint64_t
    herd_bus_published (herd_bus_t *self);

void
    herd_bus_test (bool verbose);

#endif
