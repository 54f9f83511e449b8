//  frontend/herd_connections.h: the connection table of one server: every
//  connection the listener admitted, by descriptor, in one epoll set;
//  their buffers (frontend/herd_stream), the bounds on idling and on
//  output, and the order of a loop pass: every ready connection's input, one
//  call when all are read (the group commit), then their replies written.
//  What a line means is the dispatch's (frontend/herd_frontend).
//
//  Why epoll inside zloop: zloop polls its sockets with zmq_poll, which
//  costs O(n) per wake-up in the number of items, fine for a few sockets
//  but not for thousands of connections. So every connection fd lives in one
//  epoll set, and that set's fd is one zloop item: a wake-up costs
//  O(ready connections), the way Redis's ae loop does.

#ifndef HERD_CONNECTIONS_H_INCLUDED
#define HERD_CONNECTIONS_H_INCLUDED

typedef struct _herd_connections_t herd_connections_t;
typedef struct _herd_connection_t herd_connection_t;

//  What the table calls, in the loop
typedef struct {
    //  A connection has input: take its whole lines (herd_connection_next_line)
    void (*input) (herd_connection_t *connection, void *arg);
    //  Every ready connection of the pass has been read, nothing written yet
    void (*pass_done) (void *arg);
    //  A connection is closing (the listener's per-address count goes down)
    void (*closed) (herd_connection_t *connection, void *arg);
    void *arg;
} herd_connections_handler_t;

typedef struct {
    size_t max_line;            //  Longest command line
    size_t max_pending;         //  Reply bytes one connection may hold
    size_t max_clients;         //  Connections open at most
    size_t max_output_total;    //  Reply bytes all connections may hold
    int64_t idle_timeout;       //  msecs without a command, 0: never
    int64_t first_line_timeout; //  msecs to a first command, 0: never
} herd_connections_limits_t;

herd_connections_t *
    herd_connections_new (zloop_t *loop, const herd_connections_limits_t *limits,
                      const herd_connections_handler_t *handler);

//  Closes every connection
void
    herd_connections_destroy (herd_connections_t **self_p);

//  New limits (SIGHUP), but max_line: connections open keep their
//  max_pending, new ones take the new; the rest hold from now on
void
    herd_connections_set_limits (herd_connections_t *self, const herd_connections_limits_t *limits);

//  Takes a connection the listener accepted. When every slot is taken it
//  makes room: it closes the oldest connection that has sent no command
//  yet, else the idlest that is not waiting on an answer; -1 if every
//  one is (the caller closes fd).
//  With tls, the connection speaks TLS (its handshake under the first-line
//  timeout: a connection earns its slot with a command, not a handshake).
int
    herd_connections_add (herd_connections_t *self, int fd, const char *host, const char *address, herd_tls_t *tls);

//  The connection a tag names (herd_connection_tag), or NULL if it has gone
herd_connection_t *
    herd_connections_find (herd_connections_t *self, uint64_t tag);

//  After replies were queued outside a pass (an answer came): writes what
//  it can, closes or re-arms the connection, and keeps the output bound
void
    herd_connections_settle (herd_connections_t *self, herd_connection_t *connection);

//  Connections open now
size_t
    herd_connections_count (herd_connections_t *self);

//  Every connection open now, as Redis's CLIENT LIST: a JSON array of
//  {id, address, tls, age_s, idle_s, pending, state, grants}. Caller owns.
json_t *
    herd_connections_list (herd_connections_t *self);

//  Puts its counters into stats: connections open, total, refused,
//  idle closed, evicted, dropped for output; output bytes; TLS handshakes
//  done and failed
void
    herd_connections_stats (herd_connections_t *self, json_t *stats);

//  One connection
uint64_t
    herd_connection_id (herd_connection_t *self);

//  Its id and descriptor in 64 bits: never names a later connection that
//  reuses the descriptor
uint64_t
    herd_connection_tag (herd_connection_t *self);

const char *
    herd_connection_host (herd_connection_t *self);

herd_stream_t *
    herd_connection_stream (herd_connection_t *self);

//  What its TLS client certificate grants; NULL if it may name every id
//  (the plain port, or TLS without a certificate where they are optional)
herd_grants_t *
    herd_connection_grants (herd_connection_t *self);

//  True the first time it is asked: a connection's refused lines are
//  logged once, not once a line
bool
    herd_connection_first_refusal (herd_connection_t *self);

//  Its next whole line that is not blank (without the line ending, in its
//  input buffer): HERD_STREAM_LINE, _NONE, or _TOO_LONG (answer it,
//  then herd_connection_close_when_drained). NONE while it is held, closing
//  or dead: replies keep the commands' order. A line taken is a command:
//  it earns the connection its slot and resets its idle time; blank lines are
//  skipped and earn nothing.
int
    herd_connection_next_line (herd_connection_t *self, const char **line, size_t *size);

//  Queues reply bytes; a connection past max_pending is dropped, not waited for
void
    herd_connection_append (herd_connection_t *self, const void *data, size_t size);

//  Holds its input until an answer comes: head is what the reply starts
//  with (owned by the connection until herd_connection_release). A held connection
//  is never idle: it waits on us.
void
    herd_connection_hold (herd_connection_t *self, char *head);

//  The answer came: the head (caller owns), and its input runs again
char *
    herd_connection_release (herd_connection_t *self);

bool
    herd_connection_held (herd_connection_t *self);

//  Closes once its output is written, reading nothing more
void
    herd_connection_close_when_drained (herd_connection_t *self, const char *reason);

void
    herd_connections_test (bool verbose);

#endif
