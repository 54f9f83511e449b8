//  frontend/herd_connections.c: the connection table.

#include "frontend/herd_frontend_layer.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#define S_EVENTS_MAX        256     //  epoll events taken per wake-up

//  Connections in the order they last gave something, the least recent
//  first: the first to go when every slot is taken or they idle too long
typedef struct {
    struct _herd_connection_t *oldest, *newest;
} s_queue_t;

struct _herd_connection_t {
    herd_connections_t *table;      //  Ours (borrowed)
    uint64_t id;                //  Unique for the server's lifetime
    herd_stream_t *stream;  //  Buffers and socket (owned)
    char address [64];          //  "host:port", for the log
    char host [INET6_ADDRSTRLEN];   //  The address alone
    int64_t active;             //  zclock_mono of its last command (or accept)
    int64_t opened;             //  zclock_mono of its accept
    size_t accounted;           //  Its pending output, as counted in output_total
    const char *closing;        //  Close once output drains, for this reason
    char *head;                 //  Held for an answer: what the reply starts with (owned)
    uint32_t events;            //  What epoll watches for now
    s_queue_t *queue;           //  The queue it is in: waiting or commanded
    struct _herd_connection_t *older, *newer;  //  Its neighbours in that queue
    uint64_t pass;              //  The last pass that touched it
    bool ready;                 //  In the ready list: TLS holds its input
    bool secured;               //  Its TLS handshake is done (and counted)
    herd_grants_t *grants;      //  What its certificate grants, NULL: all (owned)
    bool refusal_logged;        //  A line it may not send was logged
};

struct _herd_connections_t {
    zloop_t *loop;              //  Borrowed
    herd_connections_limits_t limits;
    herd_connections_handler_t handler;
    int epoll_fd;               //  Every connection's descriptor
    herd_connection_t **connections;    //  Indexed by fd (owned)
    size_t capacity;
    size_t count;
    uint64_t next_id;
    int idle_timer;             //  zloop timer id, 0 if none
    size_t output_total;        //  Reply bytes all connections hold now
    s_queue_t waiting;          //  No command yet, by accept time: evicted first
    s_queue_t commanded;        //  By their last command: the idlest next
    uint64_t accepted;          //  Counters for STATS: accepted since start
    uint64_t refused;           //  Refused at max_clients
    uint64_t idle_closed;       //  Closed for idling
    uint64_t evicted;           //  Closed to make room (no command yet, or the idlest)
    uint64_t output_dropped;    //  Dropped at max_output_total
    herd_ratelimit_t *log;      //  What connections make us log, limited per address (owned)
    herd_ratelimit_t *log_opened;   //  The same for "opened" lines, a budget of their own (owned)
    size_t touched_count;
    uint64_t pass;              //  Loop passes, to touch each connection once a pass
    herd_connection_t **touched;    //  This pass's connections, settled at its end
    size_t touched_capacity;
    uint64_t *ready;            //  Tags of TLS connections with input held in
    size_t ready_count;         //  their session, read in the next pass
    size_t ready_capacity;
    int wake_fd;                //  eventfd in the epoll set: a ready list to read
    uint64_t tls_handshakes;    //  TLS handshakes done
    uint64_t tls_failed;        //  ... failed (certificate, not TLS, cut)
};

//  The epoll tag of wake_fd: no connection's (their ids start at 1)
#define S_WAKE_TAG  0

uint64_t
herd_connection_tag (herd_connection_t *self)
{
    assert (self);
    return ((uint64_t) (uint32_t) self->id << 32) | (uint32_t) herd_stream_fd (self->stream);
}

//  A connection earns its slot with a command, not with bytes: one that
//  has sent none waits in the waiting queue, oldest first; one that has,
//  in the commanded queue, moved to the newest end by each command. When
//  every slot is taken the oldest waiting one makes room, else the
//  idlest commanded one (as a web server times out a request header
//  before it closes a keep-alive, and Redis evicts the idlest key).
static void
s_queue_remove (herd_connection_t *connection)
{
    s_queue_t *queue = connection->queue;
    if (!queue)
        return;
    if (connection->older)
        connection->older->newer = connection->newer;
    else
        queue->oldest = connection->newer;
    if (connection->newer)
        connection->newer->older = connection->older;
    else
        queue->newest = connection->older;
    connection->older = connection->newer = NULL;
    connection->queue = NULL;
}

//  Puts the connection at the newest end of queue (taking it off its own)
static void
s_queue_push (s_queue_t *queue, herd_connection_t *connection)
{
    s_queue_remove (connection);
    connection->queue = queue;
    connection->older = queue->newest;
    if (queue->newest)
        queue->newest->newer = connection;
    else
        queue->oldest = connection;
    queue->newest = connection;
}

static void
s_close (herd_connections_t *self, herd_connection_t *connection, const char *reason)
{
    if (self->handler.closed)
        self->handler.closed (connection, self->handler.arg);
    s_queue_remove (connection);
    int fd = herd_stream_fd (connection->stream);
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    self->connections [fd] = NULL;
    self->count--;
    self->output_total -= connection->accounted;
    if (herd_stream_tls_failed (connection->stream))
        self->tls_failed++;
    herd_ratelimit_log (self->log, connection->host, LOG_INFO, "client %" PRIu64 " %s closed: %s",
                        connection->id, connection->address, reason);
    herd_stream_destroy (&connection->stream);
    herd_grants_destroy (&connection->grants);
    freen (connection->head);
    freen (connection);
}

//  Writes what it can, then closes or re-arms epoll as the state says
static void
s_settle (herd_connections_t *self, herd_connection_t *connection)
{
    herd_stream_t *stream = connection->stream;
    herd_stream_flush (stream);
    size_t pending = herd_stream_pending (stream);
    self->output_total += pending - connection->accounted;
    connection->accounted = pending;
    bool drained = pending == 0;
    bool eof = herd_stream_eof (stream);
    if (herd_stream_dead (stream)) {
        s_close (self, connection, herd_stream_reason (stream));
        return;
    }
    if (drained && connection->closing) {
        s_close (self, connection, connection->closing);
        return;
    }
    if (drained && eof && !connection->head && herd_stream_input_size (stream) == 0) {
        s_close (self, connection, "client finished");
        return;
    }
    uint32_t events = 0;
    bool reading = !eof && !connection->closing && !connection->head && herd_stream_can_read (stream);
    if (reading)
        events |= EPOLLIN | EPOLLRDHUP;
    if (!drained)
        events |= EPOLLOUT;
    events |= herd_stream_tls_wants (stream);
    //  Input the TLS session holds and epoll cannot see: the next pass
    if (reading && !connection->ready && herd_stream_buffered (stream)) {
        if (self->ready_count == self->ready_capacity) {
            self->ready_capacity = self->ready_capacity? self->ready_capacity * 2: 64;
            self->ready = (uint64_t *) realloc (self->ready, self->ready_capacity * sizeof (uint64_t));
            assert (self->ready);
        }
        self->ready [self->ready_count++] = herd_connection_tag (connection);
        connection->ready = true;
        uint64_t one = 1;
        if (write (self->wake_fd, &one, sizeof one) == -1)
            assert (errno == EAGAIN);   //  Already awake
    }
    if (events != connection->events) {
        struct epoll_event event = { events, { .u64 = herd_connection_tag (connection) } };
        epoll_ctl (self->epoll_fd, EPOLL_CTL_MOD, herd_stream_fd (stream), &event);
        connection->events = events;
    }
}

//  Past max_output_total: drop the connections holding the most until under
static void
s_bound_output (herd_connections_t *self)
{
    while (self->output_total > self->limits.max_output_total) {
        herd_connection_t *largest = NULL;
        for (size_t fd = 0; fd < self->capacity; fd++) {
            herd_connection_t *connection = self->connections [fd];
            if (connection && (!largest || connection->accounted > largest->accounted))
                largest = connection;
        }
        if (!largest || largest->accounted == 0)
            break;
        herd_ratelimit_log (self->log, largest->host, LOG_WARNING,
                            "client %" PRIu64 " %s: dropped holding %zu reply bytes: all clients hold %zu, "
                            "over herd/max_output_total", largest->id, largest->address, largest->accounted,
                            self->output_total);
        self->output_dropped++;
        s_close (self, largest, "dropped: over herd/max_output_total");
    }
}

void
herd_connections_settle (herd_connections_t *self, herd_connection_t *connection)
{
    assert (self && connection);
    s_settle (self, connection);
    s_bound_output (self);
}

//  A connection's TLS handshake has just ended: counted, its grants read
static void
s_secured (herd_connections_t *self, herd_connection_t *connection)
{
    SSL *session = herd_stream_tls (connection->stream);
    connection->secured = true;
    self->tls_handshakes++;
    X509 *certificate = SSL_get0_peer_certificate (session);
    if (certificate)
        connection->grants = herd_grants_from_certificate (certificate);
    herd_ratelimit_log (self->log_opened, connection->host, LOG_INFO, "client %" PRIu64 " %s: %s, %s%s",
                        connection->id, connection->address, SSL_get_version (session),
                        certificate? "a certificate granting ": "no certificate: every id",
                        certificate? herd_grants_text (connection->grants): "");
}

//  Reads a connection and hands its input over, once a pass
static void
s_read (herd_connections_t *self, herd_connection_t *connection)
{
    bool secured = herd_stream_secured (connection->stream);
    ssize_t got = herd_stream_read (connection->stream);
    if (!secured && herd_stream_secured (connection->stream))
        s_secured (self, connection);
    if (got >= 0)
        self->handler.input (connection, self->handler.arg);
}

static void
s_touch (herd_connections_t *self, herd_connection_t *connection)
{
    if (connection->pass == self->pass)
        return;
    connection->pass = self->pass;
    if (self->touched_count == self->touched_capacity) {
        self->touched_capacity *= 2;
        self->touched = (herd_connection_t **) realloc (self->touched, self->touched_capacity * sizeof (herd_connection_t *));
        assert (self->touched);
    }
    self->touched [self->touched_count++] = connection;
}

//  One pass: every ready connection's input, the pass's commit, then their
//  replies. Nobody is closed before the settling, so the connections held in
//  touched stay valid; each is there once.
static int
s_handle_events (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    herd_connections_t *self = (herd_connections_t *) arg;
    struct epoll_event events [S_EVENTS_MAX];
    int count = epoll_wait (self->epoll_fd, events, S_EVENTS_MAX, 0);
    self->pass++;
    self->touched_count = 0;
    for (int index = 0; index < count; index++) {
        uint64_t tag = events [index].data.u64;
        if (tag == S_WAKE_TAG) {
            //  TLS sessions holding input: read as if epoll had said so
            uint64_t value;
            if (read (self->wake_fd, &value, sizeof value) == -1)
                assert (errno == EAGAIN);
            size_t ready_count = self->ready_count;
            self->ready_count = 0;
            for (size_t ready = 0; ready < ready_count; ready++) {
                herd_connection_t *connection = herd_connections_find (self, self->ready [ready]);
                if (!connection)
                    continue;
                connection->ready = false;
                if (connection->pass == self->pass)
                    continue;           //  Read already in this pass
                if (connection->events & EPOLLIN)
                    s_read (self, connection);
                s_touch (self, connection);
            }
            continue;
        }
        herd_connection_t *connection = herd_connections_find (self, tag);
        if (!connection || connection->pass == self->pass)
            continue;           //  Gone (its fd reused since), or read already
        uint32_t what = events [index].events;
        if (what & (EPOLLIN | EPOLLRDHUP) && connection->events & EPOLLIN)
            s_read (self, connection);
        if (what & (EPOLLERR | EPOLLHUP))
            herd_stream_kill (connection->stream, "connection reset");
        s_touch (self, connection);
    }
    self->handler.pass_done (self->handler.arg);
    for (size_t index = 0; index < self->touched_count; index++)
        s_settle (self, self->touched [index]);
    self->touched_count = 0;
    s_bound_output (self);
    return 0;
}

//  Once a second: connections that sent no command within
//  first_line_timeout, and those idle past idle_timeout, are closed (a
//  slowloris holds a slot without ever finishing a line, a blank line is
//  no command). Both queues are in the order of activity, so the work is
//  what is closed, not every connection.
static int
s_close_idle (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_connections_t *self = (herd_connections_t *) arg;
    int64_t now = zclock_mono ();
    while (self->limits.first_line_timeout && self->waiting.oldest
    &&     now - self->waiting.oldest->active > self->limits.first_line_timeout) {
        self->idle_closed++;
        s_close (self, self->waiting.oldest, "no command within herd/first_line_timeout");
    }
    for (int pass = 0; pass < 2 && self->limits.idle_timeout; pass++) {
        herd_connection_t *connection = pass? self->commanded.oldest: self->waiting.oldest;
        while (connection && now - connection->active > self->limits.idle_timeout) {
            herd_connection_t *newer = connection->newer;
            //  A held connection waits on us, it does not idle
            if (!connection->head) {
                self->idle_closed++;
                s_close (self, connection, herd_stream_input_size (connection->stream)
                                       ? "idle: a partial line, never finished (herd/idle_timeout)"
                                       : "idle: no command (herd/idle_timeout)");
            }
            connection = newer;
        }
    }
    return 0;
}

//  Every slot is taken: closes the connection that has given the least,
//  the oldest that has sent no command yet, else the idlest commanded
//  one that is not waiting on us. 0, or -1 if every connection waits on
//  an answer.
static int
s_make_room (herd_connections_t *self)
{
    herd_connection_t *victim = self->waiting.oldest;
    const char *reason = "no command yet, and the server is full: made room (herd/max_clients)";
    if (!victim) {
        reason = "the idlest, and the server is full: made room (herd/max_clients)";
        victim = self->commanded.oldest;
        while (victim && victim->head)
            victim = victim->newer;
    }
    if (!victim)
        return -1;
    if (self->evicted++ % 1000 == 0)
        zsys_warning ("full (herd/max_clients = %zu): closing connections that sent no command yet, "
                      "oldest first, then the idlest, to make room (1 in 1000 is logged)",
                      self->limits.max_clients);
    s_close (self, victim, reason);
    return 0;
}

int
herd_connections_add (herd_connections_t *self, int fd, const char *host, const char *address, herd_tls_t *tls)
{
    assert (self && fd >= 0 && host && address);
    if (self->count >= self->limits.max_clients && s_make_room (self) == -1) {
        self->refused++;
        herd_ratelimit_log (self->log, host, LOG_WARNING,
                            "refused a connection from %s: %zu clients open (herd/max_clients), "
                            "every one of them waiting on an answer", host, self->count);
        return -1;
    }
    if ((size_t) fd >= self->capacity) {
        size_t capacity = self->capacity * 2;
        while (capacity <= (size_t) fd)
            capacity *= 2;
        self->connections = (herd_connection_t **) realloc (self->connections, capacity * sizeof (herd_connection_t *));
        assert (self->connections);
        memset (self->connections + self->capacity, 0, (capacity - self->capacity) * sizeof (herd_connection_t *));
        self->capacity = capacity;
    }
    herd_connection_t *connection = (herd_connection_t *) zmalloc (sizeof (herd_connection_t));
    connection->table = self;
    connection->id = ++self->next_id;
    connection->stream = herd_stream_new (fd, self->limits.max_line, self->limits.max_pending);
    if (tls)
        herd_stream_start_tls (connection->stream, herd_tls_session (tls, fd));
    snprintf (connection->address, sizeof connection->address, "%s", address);
    snprintf (connection->host, sizeof connection->host, "%s", host);
    connection->active = connection->opened = zclock_mono ();
    connection->events = EPOLLIN | EPOLLRDHUP;
    struct epoll_event event = { connection->events, { .u64 = herd_connection_tag (connection) } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    self->connections [fd] = connection;
    s_queue_push (&self->waiting, connection);
    self->count++;
    self->accepted++;
    herd_ratelimit_log (self->log_opened, host, LOG_INFO, "client %" PRIu64 " %s opened%s (%zu open)",
                        connection->id, connection->address, tls? " on the TLS port": "", self->count);
    return 0;
}

herd_connection_t *
herd_connections_find (herd_connections_t *self, uint64_t tag)
{
    assert (self);
    size_t fd = (uint32_t) tag;
    herd_connection_t *connection = fd < self->capacity? self->connections [fd]: NULL;
    if (connection && (uint32_t) connection->id != (uint32_t) (tag >> 32))
        connection = NULL;
    return connection;
}

herd_connections_t *
herd_connections_new (zloop_t *loop, const herd_connections_limits_t *limits,
                  const herd_connections_handler_t *handler)
{
    assert (loop && limits && handler && handler->input && handler->pass_done);
    herd_connections_t *self = (herd_connections_t *) zmalloc (sizeof (herd_connections_t));
    self->loop = loop;
    self->limits = *limits;
    self->handler = *handler;
    self->capacity = 1024;
    self->connections = (herd_connection_t **) calloc (self->capacity, sizeof (herd_connection_t *));
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    self->wake_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert (self->wake_fd != -1);
    struct epoll_event wake = { EPOLLIN, { .u64 = S_WAKE_TAG } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->wake_fd, &wake);
    self->touched_capacity = S_EVENTS_MAX;
    self->touched = (herd_connection_t **) malloc (self->touched_capacity * sizeof (herd_connection_t *));
    assert (self->touched);
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    self->log_opened = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    assert (self->connections && self->epoll_fd != -1);
    zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
    zloop_poller (loop, &item, s_handle_events, self);
    //  Always on: the timeouts may be set later (SIGHUP), and a pass over
    //  nothing costs nothing
    self->idle_timer = zloop_timer (loop, 1000, 0, s_close_idle, self);
    return self;
}

void
herd_connections_set_limits (herd_connections_t *self, const herd_connections_limits_t *limits)
{
    assert (self && limits);
    //  max_line sizes the buffers of connections open now: it stays
    size_t max_line = self->limits.max_line;
    self->limits = *limits;
    self->limits.max_line = max_line;
    s_bound_output (self);
}

void
herd_connections_destroy (herd_connections_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_connections_t *self = *self_p;
        size_t open = self->count;
        for (size_t fd = 0; fd < self->capacity; fd++)
            if (self->connections [fd])
                s_close (self, self->connections [fd], "server shutting down");
        if (open)
            zsys_info ("frontend: closed %zu connections", open);
        zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
        if (self->idle_timer)
            zloop_timer_end (self->loop, self->idle_timer);
        close (self->epoll_fd);
        close (self->wake_fd);
        freen (self->touched);
        freen (self->ready);
        herd_ratelimit_destroy (&self->log);
        herd_ratelimit_destroy (&self->log_opened);
        freen (self->connections);
        freen (self);
        *self_p = NULL;
    }
}

size_t
herd_connections_count (herd_connections_t *self)
{
    assert (self);
    return self->count;
}

void
herd_connections_stats (herd_connections_t *self, json_t *stats)
{
    assert (self && stats);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_OPEN, self->count);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_TOTAL, self->accepted);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_REFUSED, self->refused);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_IDLE_CLOSED, self->idle_closed);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_EVICTED, self->evicted);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_DROPPED_OUTPUT, self->output_dropped);
    herd_counters_put (stats, HERD_COUNTER_OUTPUT_BYTES, self->output_total);
    herd_counters_put (stats, HERD_COUNTER_TLS_HANDSHAKES, self->tls_handshakes);
    herd_counters_put (stats, HERD_COUNTER_TLS_HANDSHAKES_FAILED, self->tls_failed);
}

//  --------------------------------------------------------------------------
//  One connection

uint64_t
herd_connection_id (herd_connection_t *self)
{
    assert (self);
    return self->id;
}

const char *
herd_connection_host (herd_connection_t *self)
{
    assert (self);
    return self->host;
}

json_t *
herd_connections_list (herd_connections_t *self)
{
    assert (self);
    json_t *list = json_array ();
    int64_t now = zclock_mono ();
    for (size_t fd = 0; fd < self->capacity; fd++) {
        herd_connection_t *connection = self->connections [fd];
        if (!connection)
            continue;
        SSL *tls = herd_stream_tls (connection->stream);
        const char *state = connection->head? "waiting on a WHATSAT answer"
                          : connection->closing? "closing"
                          : connection->queue == &self->waiting? (tls && !connection->secured? "in its TLS handshake"
                                                                                  : "no command yet")
                          : "commanded";
        json_array_append_new (list, json_pack ("{s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:s?}",
            "id", (json_int_t) connection->id, "address", connection->address,
            "tls", tls? (connection->secured? SSL_get_version (tls): "handshake"): "no",
            "age_s", (json_int_t) ((now - connection->opened) / 1000),
            "idle_s", (json_int_t) ((now - connection->active) / 1000),
            "pending", (json_int_t) herd_stream_pending (connection->stream),
            "state", state,
            "grants", connection->grants? herd_grants_text (connection->grants): tls && connection->secured? "every id": NULL));
    }
    return list;
}

herd_grants_t *
herd_connection_grants (herd_connection_t *self)
{
    assert (self);
    return self->grants;
}

bool
herd_connection_first_refusal (herd_connection_t *self)
{
    assert (self);
    bool first = !self->refusal_logged;
    self->refusal_logged = true;
    return first;
}

herd_stream_t *
herd_connection_stream (herd_connection_t *self)
{
    assert (self);
    return self->stream;
}

int
herd_connection_next_line (herd_connection_t *self, const char **line, size_t *size)
{
    assert (self && line && size);
    if (self->head || self->closing || herd_stream_dead (self->stream))
        return HERD_STREAM_NONE;
    int found;
    do
        found = herd_stream_take_line (self->stream, line, size);
    while (found == HERD_STREAM_LINE && herd_protocol_blank (*line, *size));
    if (found != HERD_STREAM_NONE) {
        self->active = zclock_mono ();
        s_queue_push (&self->table->commanded, self);
    }
    return found;
}

void
herd_connection_append (herd_connection_t *self, const void *data, size_t size)
{
    assert (self);
    if (herd_stream_dead (self->stream))
        return;
    size_t pending = herd_stream_pending (self->stream);
    if (herd_stream_append (self->stream, data, size) == -1)
        herd_ratelimit_log (self->table->log, self->host, LOG_WARNING,
                            "client %" PRIu64 " %s: %zu reply bytes pending, over herd/max_pending; dropping it",
                            self->id, self->address, pending + size);
}

void
herd_connection_hold (herd_connection_t *self, char *head)
{
    assert (self && head && !self->head);
    self->head = head;
}

char *
herd_connection_release (herd_connection_t *self)
{
    assert (self);
    char *head = self->head;
    self->head = NULL;
    return head;
}

bool
herd_connection_held (herd_connection_t *self)
{
    assert (self);
    return self->head != NULL;
}

void
herd_connection_close_when_drained (herd_connection_t *self, const char *reason)
{
    assert (self && reason);
    herd_stream_discard_input (self->stream);
    self->closing = reason;
}

//  --------------------------------------------------------------------------
//  Selftest: a table that echoes lines, with a handler of its own

static int s_passes = 0;
static int s_closed = 0;

static void
s_test_input (herd_connection_t *connection, void *arg)
{
    (void) arg;
    const char *line;
    size_t size;
    int found;
    while ((found = herd_connection_next_line (connection, &line, &size)) != HERD_STREAM_NONE) {
        if (found == HERD_STREAM_TOO_LONG) {
            herd_connection_append (connection, "long\n", 5);
            herd_connection_close_when_drained (connection, "line too long");
        }
        else
        if (size == 4 && memcmp (line, "HOLD", 4) == 0)
            herd_connection_hold (connection, strdup ("held"));
        else {
            herd_connection_append (connection, line, size);
            herd_connection_append (connection, "\n", 1);
        }
    }
}

static void
s_test_pass_done (void *arg)
{
    (void) arg;
    s_passes++;
}

static void
s_test_closed (herd_connection_t *connection, void *arg)
{
    (void) arg;
    assert (streq (herd_connection_host (connection), "127.0.0.1"));
    s_closed++;
}

static int
s_test_connect (herd_connections_t *connections, int *server_side)
{
    int pair [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    *server_side = pair [0];
    if (herd_connections_add (connections, pair [0], "127.0.0.1", "127.0.0.1:1", NULL) == -1)
        close (pair [0]);
    return pair [1];
}

//  What the connection side reads within a few loop turns ("" if nothing,
//  "EOF" once closed)
static const char *
s_test_read (zloop_t *loop, int fd, char *buffer, size_t size)
{
    buffer [0] = 0;
    for (int turn = 0; turn < 40; turn++) {
        herd_loop_run_for (loop, 5);
        ssize_t got = read (fd, buffer, size - 1);
        if (got == 0)
            return "EOF";
        if (got > 0) {
            buffer [got] = 0;
            return buffer;
        }
    }
    return buffer;
}

void
herd_connections_test (bool verbose)
{
    printf (" * herd_connections: ");
    if (verbose)
        printf ("\n");
    zloop_t *loop = zloop_new ();
    herd_connections_limits_t limits = { 16, 1024, 2, 1 << 20, 1500, 0 };
    herd_connections_handler_t handler = { s_test_input, s_test_pass_done, s_test_closed, NULL };
    herd_connections_t *connections = herd_connections_new (loop, &limits, &handler);
    char buffer [256];
    int fd_a, fd_b, fd_c;
    int a = s_test_connect (connections, &fd_a);
    //  A line is read in a pass, the pass ends, then the reply is written
    assert (write (a, "one\ntwo\n", 8) == 8);
    assert (streq (s_test_read (loop, a, buffer, sizeof buffer), "one\ntwo\n"));
    assert (s_passes > 0);
    //  Held: nothing behind HOLD runs until the answer comes
    assert (write (a, "HOLD\nthree\n", 11) == 11);
    assert (streq (s_test_read (loop, a, buffer, sizeof buffer), ""));
    herd_connection_t *held = herd_connections_find (connections, ((uint64_t) 1 << 32) | (uint32_t) fd_a);
    assert (held && herd_connection_held (held) && herd_connection_id (held) == 1);
    assert (!herd_connections_find (connections, ((uint64_t) 2 << 32) | (uint32_t) fd_a));
    char *head = herd_connection_release (held);
    assert (streq (head, "held"));
    freen (head);
    s_test_input (held, NULL);
    herd_connections_settle (connections, held);
    assert (streq (s_test_read (loop, a, buffer, sizeof buffer), "three\n"));
    //  Full (max_clients 2): a newcomer closes the oldest with no command yet
    int b = s_test_connect (connections, &fd_b);
    int c = s_test_connect (connections, &fd_c);
    assert (streq (s_test_read (loop, b, buffer, sizeof buffer), "EOF"));
    assert (herd_connections_count (connections) == 2 && s_closed == 1);
    //  Blank lines are no command: c is still the one to go
    assert (write (c, "\n \t\r\n\n", 6) == 6);
    assert (streq (s_test_read (loop, c, buffer, sizeof buffer), ""));
    assert (write (a, "HOLD\n", 5) == 5);
    assert (streq (s_test_read (loop, a, buffer, sizeof buffer), ""));
    int fd_d, fd_e, fd_f;
    int d = s_test_connect (connections, &fd_d);
    assert (streq (s_test_read (loop, c, buffer, sizeof buffer), "EOF"));
    //  Every connection has sent a command: the idlest goes, but never
    //  one waiting on an answer (a, held, is older than d)
    assert (write (d, "hi\n", 3) == 3);
    assert (streq (s_test_read (loop, d, buffer, sizeof buffer), "hi\n"));
    int e = s_test_connect (connections, &fd_e);
    assert (streq (s_test_read (loop, d, buffer, sizeof buffer), "EOF"));
    assert (herd_connections_count (connections) == 2 && s_closed == 3);
    //  Both wait on an answer: a newcomer is refused
    assert (write (e, "HOLD\n", 5) == 5);
    assert (streq (s_test_read (loop, e, buffer, sizeof buffer), ""));
    int f = s_test_connect (connections, &fd_f);
    assert (herd_connections_count (connections) == 2);
    held = herd_connections_find (connections, ((uint64_t) 1 << 32) | (uint32_t) fd_a);
    herd_connection_t *held_e = herd_connections_find (connections, ((uint64_t) 5 << 32) | (uint32_t) fd_e);
    assert (held && held_e);
    head = herd_connection_release (held);
    freen (head);
    herd_connections_settle (connections, held);
    head = herd_connection_release (held_e);
    freen (head);
    herd_connections_settle (connections, held_e);
    //  Too long: answered, then closed once written
    assert (write (e, "0123456789abcdefXYZ\n", 20) == 20);
    assert (streq (s_test_read (loop, e, buffer, sizeof buffer), "long\n"));
    assert (streq (s_test_read (loop, e, buffer, sizeof buffer), "EOF"));
    //  Idle past 1.5 s: closed by the once-a-second check
    bool idle_closed = false;
    for (int round = 0; round < 100 && !idle_closed; round++)
        idle_closed = streq (s_test_read (loop, a, buffer, sizeof buffer), "EOF");
    assert (idle_closed);
    json_t *stats = json_object ();
    herd_connections_stats (connections, stats);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_TOTAL, NULL) == 5);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_REFUSED, NULL) == 1);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_EVICTED, NULL) == 3);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_IDLE_CLOSED, NULL) == 1);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_OPEN, NULL) == 0);
    json_decref (stats);
    assert (s_closed == 5);
    close (a);
    close (b);
    close (c);
    close (d);
    close (e);
    close (f);
    herd_connections_destroy (&connections);
    assert (connections == NULL);
    zloop_destroy (&loop);
    printf ("OK\n");
}
