//  frontend/herd_clients.h: the client table of one server: every
//  connection the listener admitted, by descriptor, in one epoll set;
//  their buffers (frontend/herd_connection), the bounds on idling and on
//  output, and the order of a loop pass: every ready client's input, one
//  call when all are read (the group commit), then their replies written.
//  What a line means is the dispatch's (frontend/herd_frontend).
//
//  Why epoll inside zloop: zloop polls its sockets with zmq_poll, which
//  costs O(n) per wake-up in the number of items, fine for a few sockets
//  but not for thousands of clients. So every client fd lives in one
//  epoll set, and that set's fd is one zloop item: a wake-up costs
//  O(ready clients), the way Redis's ae loop does.

#ifndef HERD_CLIENTS_H_INCLUDED
#define HERD_CLIENTS_H_INCLUDED

typedef struct _herd_clients_t herd_clients_t;
typedef struct _herd_client_t herd_client_t;

//  What the table calls, in the loop
typedef struct {
    //  A client has input: take its whole lines (herd_client_next_line)
    void (*input) (herd_client_t *client, void *arg);
    //  Every ready client of the pass has been read, nothing written yet
    void (*pass_done) (void *arg);
    //  A client is closing (the listener's per-address count goes down)
    void (*closed) (herd_client_t *client, void *arg);
    void *arg;
} herd_clients_handler_t;

typedef struct {
    size_t max_line;            //  Longest command line
    size_t max_pending;         //  Reply bytes one client may hold
    size_t max_clients;         //  Connections open at most
    size_t max_output_total;    //  Reply bytes all clients may hold
    int64_t idle_timeout;       //  msecs without a command, 0: never
    int64_t first_line_timeout; //  msecs to a first command, 0: never
} herd_clients_limits_t;

herd_clients_t *
    herd_clients_new (zloop_t *loop, const herd_clients_limits_t *limits,
                      const herd_clients_handler_t *handler);

//  Closes every connection
void
    herd_clients_destroy (herd_clients_t **self_p);

//  New limits (SIGHUP), but max_line: connections open keep their
//  max_pending, new ones take the new; the rest hold from now on
void
    herd_clients_set_limits (herd_clients_t *self, const herd_clients_limits_t *limits);

//  Takes a connection the listener accepted. When every slot is taken it
//  makes room: it closes the oldest connection that has sent no command
//  yet, else the idlest that is not waiting on an answer; -1 if every
//  one is (the caller closes fd).
//  With tls, the connection speaks TLS (its handshake under the first-line
//  timeout: a connection earns its slot with a command, not a handshake).
int
    herd_clients_add (herd_clients_t *self, int fd, const char *host, const char *peer, herd_tls_t *tls);

//  The client a tag names (herd_client_tag), or NULL if it has gone
herd_client_t *
    herd_clients_find (herd_clients_t *self, uint64_t tag);

//  After replies were queued outside a pass (an answer came): writes what
//  it can, closes or re-arms the client, and keeps the output bound
void
    herd_clients_settle (herd_clients_t *self, herd_client_t *client);

//  Connections open now
size_t
    herd_clients_count (herd_clients_t *self);

//  Every connection open now, as Redis's CLIENT LIST: a JSON array of
//  {id, peer, tls, age_s, idle_s, pending, state, grants}. Caller owns.
json_t *
    herd_clients_list (herd_clients_t *self);

//  Puts its counters into stats: connections open, total, refused,
//  idle closed, evicted, dropped for output; output bytes; TLS handshakes
//  done and failed
void
    herd_clients_stats (herd_clients_t *self, json_t *stats);

//  One client
uint64_t
    herd_client_id (herd_client_t *self);

//  Its id and descriptor in 64 bits: never names a later client that
//  reuses the descriptor
uint64_t
    herd_client_tag (herd_client_t *self);

const char *
    herd_client_host (herd_client_t *self);

herd_connection_t *
    herd_client_connection (herd_client_t *self);

//  What its TLS client certificate grants; NULL if it may name every id
//  (the plain port, or TLS without a certificate where they are optional)
herd_grants_t *
    herd_client_grants (herd_client_t *self);

//  True the first time it is asked: a connection's refused lines are
//  logged once, not once a line
bool
    herd_client_first_refusal (herd_client_t *self);

//  Its next whole line that is not blank (without the line ending, in its
//  input buffer): HERD_CONNECTION_LINE, _NONE, or _TOO_LONG (answer it,
//  then herd_client_close_when_drained). NONE while it is held, closing
//  or dead: replies keep the commands' order. A line taken is a command:
//  it earns the client its slot and resets its idle time; blank lines are
//  skipped and earn nothing.
int
    herd_client_next_line (herd_client_t *self, const char **line, size_t *size);

//  Queues reply bytes; a client past max_pending is dropped, not waited for
void
    herd_client_append (herd_client_t *self, const void *data, size_t size);

//  Holds its input until an answer comes: head is what the reply starts
//  with (owned by the client until herd_client_release). A held client
//  is never idle: it waits on us.
void
    herd_client_hold (herd_client_t *self, char *head);

//  The answer came: the head (caller owns), and its input runs again
char *
    herd_client_release (herd_client_t *self);

bool
    herd_client_held (herd_client_t *self);

//  Closes once its output is written, reading nothing more
void
    herd_client_close_when_drained (herd_client_t *self, const char *reason);

void
    herd_clients_test (bool verbose);

#endif
