//  frontend/herd_frontend.c: clients: listener, connections, dispatch,
//  and WHATSAT through the places broker.

#include "herd_classes.h"
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define S_EVENTS_MAX        256     //  epoll events taken per wake-up
#define S_LISTENER_TAG      UINT64_MAX
#define S_ACCEPT_RETRY      100     //  msecs to pause accepting on EMFILE

//  One client: its connection, and where its commands stand
typedef struct _s_client_t {
    uint64_t id;                //  Unique for the server's lifetime
    herd_connection_t *connection;  //  Buffers and socket (owned)
    char peer [64];             //  "address:port", for the log
    char address [INET6_ADDRSTRLEN];    //  The client's address alone
    int64_t active;             //  zclock_mono of its last whole line (or accept)
    size_t accounted;           //  Its pending output, as counted in output_total
    bool closing;               //  Close once output drains
    bool waiting;               //  A WHATSAT is at the places broker
    char *whatsat_line;         //  That WHATSAT's AT line (owned)
    uint32_t events;            //  What epoll watches for now
    bool touched;               //  In this pass's touched list: not to be closed before settling
    bool lineless;              //  No whole line yet: in the lineless list, oldest first
    struct _s_client_t *older, *newer;  //  Its neighbours in that list
} s_client_t;

//  An AT reply queued in this pass, until the node commits the pass: if
//  the commit fails, it becomes "? <line>" before anything is written
typedef struct {
    s_client_t *client;
    size_t offset;              //  In the client's queued output
    size_t size;                //  The AT line and its \n
    const char *line;           //  The IAMAT as received (in its input buffer)
    size_t line_size;
} s_ack_t;

//  Request id of a WHATSAT at the places broker
typedef struct {
    uint64_t client_id;
    int fd;
} s_request_t;

struct _herd_frontend_t {
    zloop_t *loop;              //  The node's loop (borrowed)
    herd_frontend_node_t node;  //  The node's calls
    char *server;               //  Our name, first field of AT replies
    char *bind;                 //  HOST:PORT we listen on
    char *setting;              //  Where the config says so, for errors
    int listener;               //  Listening TCP socket, or -1
    int epoll_fd;               //  Client fds and the listener
    s_client_t **clients;       //  Indexed by fd (owned)
    size_t clients_capacity;
    size_t client_count;
    int idle_timer;             //  zloop timer id, 0 if none
    uint64_t next_id;
    zsock_t *places;            //  DEALER to the places broker
    herd_reader_t *places_reader;   //  Its answers, in the loop
    size_t max_line;            //  Longest command line
    size_t max_pending;         //  Output bound per client
    size_t max_clients;
    size_t max_per_address;     //  0: no limit
    int64_t idle_timeout;       //  msecs, 0: never
    size_t max_output_total;    //  Reply bytes queued for all clients
    size_t output_total;        //  What they hold now
    herd_tally_t *per_address;  //  Connections open from each address
    herd_traffic_t *traffic;    //  Every line in and reply out, or NULL (the node's)
    char *scratch;              //  Where AT lines are built
    size_t scratch_capacity;
    s_ack_t *acks;              //  AT replies awaiting this pass's commit
    size_t ack_count;
    size_t ack_capacity;
    s_client_t **touched;       //  Clients this pass read from, to settle
    size_t touched_count;
    size_t touched_capacity;
    uint64_t connections;       //  Counters for STATS: accepted since start
    uint64_t iamats;
    uint64_t whatsats;
    uint64_t bad_lines;
    uint64_t refused;           //  Connections refused at max_clients
    uint64_t refused_address;   //  Connections refused at max_per_address
    uint64_t idle_closed;       //  Connections closed for idling
    uint64_t evicted;           //  Connections with no line yet closed to make room
    int64_t first_line_timeout; //  msecs a connection may go without a first line, 0: never
    s_client_t *oldest_lineless;    //  Connections with no whole line yet,
    s_client_t *newest_lineless;    //  oldest first (evicted first when full)
    uint64_t output_dropped;    //  Clients dropped at max_output_total
    uint64_t uncommitted;       //  AT replies turned to "?" by a failed commit
    uint64_t refused_full;      //  IAMATs answered "?": store full
    uint64_t refused_future;    //  ... client time too far ahead
    uint64_t refused_journal;   //  ... journal cannot write
};

//  --------------------------------------------------------------------------
//  Connections

static uint64_t
s_epoll_tag (s_client_t *client)
{
    //  The client id beside the fd, so a reused fd is never mistaken
    return ((uint64_t) (uint32_t) client->id << 32)
         | (uint32_t) herd_connection_fd (client->connection);
}

//  The connections that have sent no whole line yet, oldest first: when
//  every slot is taken they make room, oldest first, as a web server
//  times out a request header before a request
static void
s_lineless_add (herd_frontend_t *self, s_client_t *client)
{
    client->lineless = true;
    client->older = self->newest_lineless;
    client->newer = NULL;
    if (self->newest_lineless)
        self->newest_lineless->newer = client;
    else
        self->oldest_lineless = client;
    self->newest_lineless = client;
}

static void
s_lineless_remove (herd_frontend_t *self, s_client_t *client)
{
    if (!client->lineless)
        return;
    client->lineless = false;
    if (client->older)
        client->older->newer = client->newer;
    else
        self->oldest_lineless = client->newer;
    if (client->newer)
        client->newer->older = client->older;
    else
        self->newest_lineless = client->older;
    client->older = client->newer = NULL;
}

static void
s_client_close (herd_frontend_t *self, s_client_t *client, const char *reason)
{
    s_lineless_remove (self, client);
    int fd = herd_connection_fd (client->connection);
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    self->clients [fd] = NULL;
    self->client_count--;
    self->output_total -= client->accounted;
    herd_tally_remove (self->per_address, client->address);
    zsys_info ("client %" PRIu64 " %s closed: %s", client->id, client->peer, reason);
    herd_connection_destroy (&client->connection);
    freen (client->whatsat_line);
    freen (client);
}

//  Queues reply bytes; a client past its bound is dropped, not waited for
static void
s_client_append (s_client_t *client, const char *data, size_t size)
{
    if (herd_connection_dead (client->connection))
        return;
    size_t pending = herd_connection_pending (client->connection);
    if (herd_connection_append (client->connection, data, size) == -1)
        zsys_warning ("client %" PRIu64 " %s: %zu reply bytes pending, over herd/max_pending; dropping it",
                      client->id, client->peer, pending + size);
}

static void
s_log_traffic (herd_frontend_t *self, s_client_t *client, const char *direction,
               const char *data, size_t size, const char *note)
{
    if (self->traffic)
        herd_traffic_client (self->traffic, client->id, direction, data, size, NULL, NULL, 0, note);
}

//  "? <the line as received>"
static void
s_reply_invalid (herd_frontend_t *self, s_client_t *client, const char *line, size_t size,
                 const char *reason)
{
    if (self->traffic) {
        char note [128];
        snprintf (note, sizeof note, "   (%s)", reason);
        herd_traffic_client (self->traffic, client->id, "> ?", line, size, NULL, NULL, 0, note);
    }
    s_client_append (client, "? ", 2);
    s_client_append (client, line, size);
    s_client_append (client, "\n", 1);
}

//  --------------------------------------------------------------------------
//  Commands

static void
s_handle_iamat (herd_frontend_t *self, s_client_t *client, herd_command_t *command,
                const char *line, size_t line_size)
{
    herd_at_t at;
    int size = herd_protocol_format_at (self->scratch, self->scratch_capacity, self->server,
                                        herd_connection_receipt (client->connection), command, &at);
    assert (size > 0);              //  scratch fits max_line and our name
    int stored = self->node.accept (&at, self->node.arg);
    //  AT is a promise (docs/PROTOCOL.md): where it cannot be kept, "?"
    if (stored == HERD_STORE_FULL) {
        self->refused_full++;
        s_reply_invalid (self, client, line, line_size, "store full (herd/max_stored): not stored");
        return;
    }
    if (stored == HERD_STORE_FUTURE) {
        self->refused_future++;
        s_reply_invalid (self, client, line, line_size, "client time too far ahead (herd/max_future)");
        return;
    }
    if (stored == HERD_STORE_UNWRITABLE) {
        self->refused_journal++;
        s_reply_invalid (self, client, line, line_size, "the journal cannot write: not stored");
        return;
    }
    if (self->ack_count == self->ack_capacity) {
        self->ack_capacity = self->ack_capacity? self->ack_capacity * 2: 256;
        self->acks = (s_ack_t *) realloc (self->acks, self->ack_capacity * sizeof (s_ack_t));
        assert (self->acks);
    }
    s_ack_t ack = { client, herd_connection_pending (client->connection), size + 1, line, line_size };
    self->acks [self->ack_count++] = ack;
    s_client_append (client, self->scratch, size);
    s_client_append (client, "\n", 1);
    //  The IAMAT and its reply on one line
    if (self->traffic)
        herd_traffic_client (self->traffic, client->id, "<", line, line_size, ">", self->scratch, size,
                             stored == HERD_STORE_STORED? NULL: "   (not newer than the stored one: kept that)");
}

//  Group commit: the node makes what this pass accepted durable (one
//  journal write, one fdatasync under "always", for all clients) before
//  any reply leaves. If it cannot, this pass's AT replies become "?":
//  AT is a promise the server could not keep. Latest first, so the
//  offsets of earlier replies in the same output stay true.
static void
s_commit (herd_frontend_t *self)
{
    if (self->node.commit (self->node.arg) == -1) {
        for (size_t index = self->ack_count; index-- > 0;) {
            s_ack_t *ack = &self->acks [index];
            size_t size = ack->line_size + 3;
            char *reply = (char *) malloc (size);
            assert (reply);
            memcpy (reply, "? ", 2);
            memcpy (reply + 2, ack->line, ack->line_size);
            reply [size - 1] = '\n';
            if (herd_connection_replace (ack->client->connection, ack->offset, ack->size, reply, size) == 0) {
                self->uncommitted++;
                s_log_traffic (self, ack->client, ">", reply, size - 1,
                               "   (the journal failed: replaces the AT above)");
            }
            freen (reply);
        }
    }
    self->ack_count = 0;
    //  The pass's traffic lines, replies as sent included, in one write
    //  before any reply leaves
    if (self->traffic)
        herd_traffic_flush (self->traffic);
}

//  Ends a WHATSAT: its AT line, the places JSON, an empty line
static void
s_reply_whatsat (herd_frontend_t *self, s_client_t *client, const char *json)
{
    size_t line_size = strlen (client->whatsat_line);
    s_client_append (client, client->whatsat_line, line_size);
    s_client_append (client, "\n", 1);
    s_client_append (client, json, strlen (json));
    s_client_append (client, "\n\n", 2);
    char suffix [64];
    snprintf (suffix, sizeof suffix, " + places JSON (%zu bytes)", strlen (json));
    s_log_traffic (self, client, ">", client->whatsat_line, line_size, suffix);
    freen (client->whatsat_line);
    client->waiting = false;
}

//  An answer the loop makes itself, in the places reply's shape
static void
s_reply_places_error (herd_frontend_t *self, s_client_t *client, const char *message)
{
    json_t *response = herd_nearby_error ("%s", message);
    char *text = herd_nearby_text (response, HERD_RESULTS_MAX);
    json_decref (response);
    s_reply_whatsat (self, client, text);
    freen (text);
}

static void
s_handle_whatsat (herd_frontend_t *self, s_client_t *client, herd_command_t *command,
                  const char *line, size_t size)
{
    char id [HERD_CLIENT_ID_MAX + 1];
    memcpy (id, command->client.start, command->client.size);
    id [command->client.size] = 0;
    herd_at_t at;
    const char *stored = self->node.lookup (id, &at, self->node.arg);
    if (!stored) {
        s_reply_invalid (self, client, line, size, "unknown client");
        return;
    }
    //  The reply carries the line as it is now, whatever comes later
    client->whatsat_line = strdup (stored);
    client->waiting = true;
    s_request_t request = { client->id, herd_connection_fd (client->connection) };
    herd_query_t query = { 0, 0, command->radius_km * 1000, (uint32_t) command->max_results };
    herd_protocol_at_position (&at, &query.latitude, &query.longitude);
    //  The DEALER has a send timeout of 0: a full queue fails, never blocks
    if (zsock_send (self->places, "bb", &request, sizeof request, &query, sizeof query) == -1) {
        zsys_warning ("client %" PRIu64 ": places broker not taking queries", client->id);
        s_reply_places_error (self, client, "places: broker is not taking queries");
    }
    herd_reader_check (self->places_reader);
}

static void
s_handle_line (herd_frontend_t *self, s_client_t *client, const char *line, size_t size)
{
    //  line comes without its line ending (\n or \r\n): it is what "?" echoes
    herd_command_t command;
    herd_protocol_parse (line, size, &command);
    if (command.kind == HERD_LINE_EMPTY)
        return;
    //  An IAMAT is logged with its reply, a bad line with its "?"
    if (command.kind == HERD_LINE_WHATSAT)
        s_log_traffic (self, client, "<", line, size, NULL);
    if (command.kind == HERD_LINE_IAMAT) {
        self->iamats++;
        s_handle_iamat (self, client, &command, line, size);
    }
    else
    if (command.kind == HERD_LINE_WHATSAT) {
        self->whatsats++;
        s_handle_whatsat (self, client, &command, line, size);
    }
    else {
        self->bad_lines++;
        s_reply_invalid (self, client, line, size, command.reason);
    }
}

//  Runs every whole line held, in order, stopping at a WHATSAT until its
//  answer comes (replies must keep the commands' order)
static void
s_process_input (herd_frontend_t *self, s_client_t *client)
{
    const char *line;
    size_t size;
    while (!client->waiting && !client->closing && !herd_connection_dead (client->connection)) {
        int found = herd_connection_take_line (client->connection, &line, &size);
        if (found == HERD_CONNECTION_NONE)
            break;
        client->active = zclock_mono ();
        s_lineless_remove (self, client);
        if (found == HERD_CONNECTION_LINE)
            s_handle_line (self, client, line, size);
        else {
            zsys_warning ("client %" PRIu64 " %s: line longer than %zu bytes; answering and closing",
                          client->id, client->peer, self->max_line);
            s_reply_invalid (self, client, line, size, "line too long");
            herd_connection_discard_input (client->connection);
            client->closing = true;
        }
    }
}

//  Writes what it can, then closes or re-arms epoll as the state says
static void
s_client_settle (herd_frontend_t *self, s_client_t *client)
{
    herd_connection_t *connection = client->connection;
    herd_connection_flush (connection);
    size_t pending = herd_connection_pending (connection);
    self->output_total += pending - client->accounted;
    client->accounted = pending;
    bool drained = pending == 0;
    bool eof = herd_connection_eof (connection);
    if (herd_connection_dead (connection)) {
        s_client_close (self, client, herd_connection_reason (connection));
        return;
    }
    if (drained && client->closing) {
        s_client_close (self, client, "line too long");
        return;
    }
    if (drained && eof && !client->waiting && herd_connection_input_size (connection) == 0) {
        s_client_close (self, client, "client finished");
        return;
    }
    uint32_t events = 0;
    if (!eof && !client->closing && !client->waiting && herd_connection_can_read (connection))
        events |= EPOLLIN | EPOLLRDHUP;
    if (!drained)
        events |= EPOLLOUT;
    if (events != client->events) {
        struct epoll_event event = { events, { .u64 = s_epoll_tag (client) } };
        epoll_ctl (self->epoll_fd, EPOLL_CTL_MOD, herd_connection_fd (connection), &event);
        client->events = events;
    }
}

//  Past max_output_total: drop the clients holding the most until under
static void
s_bound_output (herd_frontend_t *self)
{
    while (self->output_total > self->max_output_total) {
        s_client_t *largest = NULL;
        for (size_t fd = 0; fd < self->clients_capacity; fd++) {
            s_client_t *client = self->clients [fd];
            if (client && (!largest || client->accounted > largest->accounted))
                largest = client;
        }
        if (!largest || largest->accounted == 0)
            break;
        zsys_warning ("client %" PRIu64 " %s: dropped holding %zu reply bytes: all clients hold %zu, "
                      "over herd/max_output_total", largest->id, largest->peer, largest->accounted,
                      self->output_total);
        self->output_dropped++;
        s_client_close (self, largest, "dropped: over herd/max_output_total");
    }
}

//  Once a second: connections that sent no whole line for idle_timeout
//  are closed (a slowloris holds a slot without ever finishing a line)
static int
s_close_idle (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_frontend_t *self = (herd_frontend_t *) arg;
    int64_t now = zclock_mono ();
    //  No first line within first_line_timeout: closed, oldest first
    while (self->first_line_timeout && self->oldest_lineless
    &&     now - self->oldest_lineless->active > self->first_line_timeout) {
        self->idle_closed++;
        s_client_close (self, self->oldest_lineless, "no command within herd/first_line_timeout");
    }
    for (size_t fd = 0; fd < self->clients_capacity && self->idle_timeout; fd++) {
        s_client_t *client = self->clients [fd];
        //  A client waiting on the places broker waits on us, not idles
        if (client && !client->waiting && now - client->active > self->idle_timeout) {
            self->idle_closed++;
            s_client_close (self, client, herd_connection_input_size (client->connection)
                                          ? "idle: a partial line, never finished (herd/idle_timeout)"
                                          : "idle: no command (herd/idle_timeout)");
        }
    }
    return 0;
}

static void
s_client_new (herd_frontend_t *self, int fd, struct sockaddr_storage *address)
{
    if ((size_t) fd >= self->clients_capacity) {
        size_t capacity = self->clients_capacity * 2;
        while (capacity <= (size_t) fd)
            capacity *= 2;
        self->clients = (s_client_t **) realloc (self->clients, capacity * sizeof (s_client_t *));
        assert (self->clients);
        memset (self->clients + self->clients_capacity, 0,
                (capacity - self->clients_capacity) * sizeof (s_client_t *));
        self->clients_capacity = capacity;
    }
    s_client_t *client = (s_client_t *) zmalloc (sizeof (s_client_t));
    client->id = ++self->next_id;
    client->connection = herd_connection_new (fd, self->max_line, self->max_pending);
    char host [INET6_ADDRSTRLEN] = "?";
    char port [8] = "?";
    getnameinfo ((struct sockaddr *) address, sizeof *address, host, sizeof host,
                 port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf (client->peer, sizeof client->peer, "%s:%s", host, port);
    snprintf (client->address, sizeof client->address, "%s", host);
    client->active = zclock_mono ();
    herd_tally_add (self->per_address, host);
    int on = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    client->events = EPOLLIN | EPOLLRDHUP;
    struct epoll_event event = { client->events, { .u64 = s_epoll_tag (client) } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    self->clients [fd] = client;
    s_lineless_add (self, client);
    self->client_count++;
    self->connections++;
    zsys_info ("client %" PRIu64 " %s opened (%zu open)", client->id, client->peer,
               self->client_count);
}

static int
s_resume_accepting (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_frontend_t *self = (herd_frontend_t *) arg;
    struct epoll_event event = { EPOLLIN, { .u64 = S_LISTENER_TAG } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->listener, &event);
    zsys_info ("accept: resumed (%zu clients open)", self->client_count);
    return 0;
}

//  Every slot is taken: closes the oldest connection that has sent no
//  whole line yet (and is not in the middle of this pass). 0, or -1 if
//  there is none.
static int
s_make_room (herd_frontend_t *self)
{
    s_client_t *victim = self->oldest_lineless;
    for (int skipped = 0; victim && victim->touched && skipped < 64; skipped++)
        victim = victim->newer;
    if (!victim || victim->touched)
        return -1;
    if (self->evicted++ % 1000 == 0)
        zsys_warning ("full (herd/max_clients = %zu): closing connections that sent no command yet, "
                      "oldest first, to make room (1 in 1000 is logged)", self->max_clients);
    s_client_close (self, victim, "no command yet, and the server is full: made room (herd/max_clients)");
    return 0;
}

static void
s_accept (herd_frontend_t *self)
{
    while (true) {
        struct sockaddr_storage address;
        socklen_t address_size = sizeof address;
        int fd = accept4 (self->listener, (struct sockaddr *) &address, &address_size,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                //  Level-triggered listener would spin: pause it briefly
                zsys_warning ("accept: %s (%zu clients open); pausing accepts for %d ms",
                              strerror (errno), self->client_count, S_ACCEPT_RETRY);
                epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, self->listener, NULL);
                zloop_timer (self->loop, S_ACCEPT_RETRY, 1, s_resume_accepting, self);
            }
            return;                 //  EAGAIN: no more waiting
        }
        if (self->client_count >= self->max_clients && s_make_room (self) == -1) {
            zsys_warning ("refused a connection: %zu clients open (herd/max_clients), "
                          "every one of them has sent a command", self->client_count);
            self->refused++;
            close (fd);
            continue;
        }
        if (self->max_per_address) {
            char host [INET6_ADDRSTRLEN] = "?";
            getnameinfo ((struct sockaddr *) &address, address_size, host, sizeof host, NULL, 0,
                         NI_NUMERICHOST);
            size_t held = herd_tally_count (self->per_address, host);
            if (held >= self->max_per_address) {
                if (self->refused_address++ % 1000 == 0)
                    zsys_warning ("refused a connection from %s: %zu open from there "
                                  "(herd/max_per_address; 1 in 1000 such refusals is logged)", host, held);
                close (fd);
                continue;
            }
        }
        s_client_new (self, fd, &address);
    }
}

static int
s_handle_events (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    herd_frontend_t *self = (herd_frontend_t *) arg;
    struct epoll_event events [S_EVENTS_MAX];
    int count = epoll_wait (self->epoll_fd, events, S_EVENTS_MAX, 0);
    //  One pass: every ready client's commands, one commit for them all,
    //  then their replies. Nobody is closed before the settling, so the
    //  clients held in touched stay valid.
    self->touched_count = 0;
    for (int index = 0; index < count; index++) {
        uint64_t tag = events [index].data.u64;
        if (tag == S_LISTENER_TAG) {
            s_accept (self);
            continue;
        }
        int fd = (int) (uint32_t) tag;
        s_client_t *client = (size_t) fd < self->clients_capacity? self->clients [fd]: NULL;
        if (!client || (uint32_t) client->id != (uint32_t) (tag >> 32))
            continue;           //  Gone, and its fd reused since
        uint32_t what = events [index].events;
        if (what & (EPOLLIN | EPOLLRDHUP) && client->events & EPOLLIN
        &&  herd_connection_read (client->connection) >= 0)
            s_process_input (self, client);
        if (what & (EPOLLERR | EPOLLHUP))
            herd_connection_kill (client->connection, "connection reset");
        if (!client->touched) {
            client->touched = true;
            self->touched [self->touched_count++] = client;
        }
    }
    s_commit (self);
    for (size_t index = 0; index < self->touched_count; index++) {
        self->touched [index]->touched = false;
        s_client_settle (self, self->touched [index]);
    }
    s_bound_output (self);
    return 0;
}

//  The places broker answers a WHATSAT: [request id][JSON]
static int
s_handle_places (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_frontend_t *self = (herd_frontend_t *) arg;
    zframe_t *request_frame = NULL;
    char *json = NULL;
    if (zsock_recv (reader, "fs", &request_frame, &json) == -1)
        return 0;
    s_request_t request;
    s_client_t *client = NULL;
    if (request_frame && zframe_size (request_frame) == sizeof request) {
        memcpy (&request, zframe_data (request_frame), sizeof request);
        if (request.fd >= 0 && (size_t) request.fd < self->clients_capacity)
            client = self->clients [request.fd];
        if (client && (client->id != request.client_id || !client->waiting))
            client = NULL;          //  That client has gone
    }
    if (client && json) {
        s_reply_whatsat (self, client, json);
        //  Lines that came behind the WHATSAT run now
        s_process_input (self, client);
        s_commit (self);
        s_client_settle (self, client);
        s_bound_output (self);
    }
    zframe_destroy (&request_frame);
    freen (json);
    return 0;
}

//  --------------------------------------------------------------------------
//  Start and stop

static int
s_listen (herd_frontend_t *self, char **error_p)
{
    struct addrinfo *addresses = NULL;
    char *error = NULL;
    if (herd_address_resolve (self->bind, true, &addresses, &error)) {
        *error_p = zsys_sprintf ("cannot listen on %s (%s)", error, self->setting);
        freen (error);
        return -1;
    }
    int fd = socket (addresses->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd == -1
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1
    ||  bind (fd, addresses->ai_addr, addresses->ai_addrlen) == -1
    ||  listen (fd, SOMAXCONN) == -1) {
        *error_p = zsys_sprintf ("cannot listen on %s (%s): %s", self->bind, self->setting, strerror (errno));
        if (fd != -1)
            close (fd);
        fd = -1;
    }
    freeaddrinfo (addresses);
    if (fd == -1)
        return -1;
    self->listener = fd;
    struct epoll_event event = { EPOLLIN, { .u64 = S_LISTENER_TAG } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    return 0;
}

herd_frontend_t *
herd_frontend_new (herd_config_t *config, const char *server, zloop_t *loop,
                   const herd_frontend_node_t *node, char **error_p)
{
    assert (config && server && loop && node && error_p);
    herd_frontend_t *self = (herd_frontend_t *) zmalloc (sizeof (herd_frontend_t));
    self->loop = loop;
    self->node = *node;
    self->server = strdup (server);
    self->bind = strdup (herd_config_client_bind (config, server));
    self->setting = zsys_sprintf ("servers/%s/client in %s", server, herd_config_filename (config));
    self->listener = -1;
    self->max_line = herd_config_number (config, "herd/max_line");
    self->max_pending = herd_config_number (config, "herd/max_pending");
    self->max_clients = herd_config_number (config, "herd/max_clients");
    self->max_per_address = herd_config_number (config, "herd/max_per_address");
    self->idle_timeout = herd_config_number (config, "herd/idle_timeout") * 1000;
    self->first_line_timeout = herd_config_number (config, "herd/first_line_timeout") * 1000;
    self->max_output_total = herd_config_number (config, "herd/max_output_total");
    self->per_address = herd_tally_new ();
    self->traffic = node->traffic;
    self->scratch_capacity = self->max_line + strlen (self->server) + 64;
    self->scratch = (char *) malloc (self->scratch_capacity);
    self->touched = (s_client_t **) malloc (S_EVENTS_MAX * sizeof (s_client_t *));
    self->clients_capacity = 1024;
    self->clients = (s_client_t **) calloc (self->clients_capacity, sizeof (s_client_t *));
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    assert (self->scratch && self->clients && self->epoll_fd != -1);
    if (s_listen (self, error_p)) {
        herd_frontend_destroy (&self);
        return NULL;
    }
    char *endpoint = herd_places_endpoint (server);
    self->places = zsock_new (ZMQ_DEALER);
    zsock_set_sndtimeo (self->places, 0);
    zsock_set_rcvtimeo (self->places, HERD_LOOP_RCVTIMEO);
    zsock_set_sndhwm (self->places, (int) self->max_clients + 1000);
    zsock_set_rcvhwm (self->places, (int) self->max_clients + 1000);
    zsock_connect (self->places, "%s", endpoint);
    freen (endpoint);
    self->places_reader = herd_reader_new (loop, self->places, s_handle_places, self);
    zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
    zloop_poller (loop, &item, s_handle_events, self);
    if (self->idle_timeout || self->first_line_timeout)
        self->idle_timer = zloop_timer (loop, 1000, 0, s_close_idle, self);
    zsys_info ("frontend: %s listening for clients on %s (port %d)", server, self->bind,
               herd_frontend_port (self));
    return self;
}

void
herd_frontend_destroy (herd_frontend_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_frontend_t *self = *self_p;
        size_t open = self->client_count;
        for (size_t fd = 0; fd < self->clients_capacity; fd++)
            if (self->clients [fd])
                s_client_close (self, self->clients [fd], "server shutting down");
        if (open)
            zsys_info ("frontend: closed %zu connections", open);
        zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
        if (self->idle_timer)
            zloop_timer_end (self->loop, self->idle_timer);
        herd_tally_destroy (&self->per_address);
        herd_reader_destroy (&self->places_reader);
        zsock_destroy (&self->places);
        if (self->listener != -1)
            close (self->listener);
        close (self->epoll_fd);
        freen (self->clients);
        freen (self->touched);
        freen (self->acks);
        freen (self->scratch);
        freen (self->bind);
        freen (self->setting);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_frontend_port (herd_frontend_t *self)
{
    assert (self);
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    if (self->listener == -1 || getsockname (self->listener, (struct sockaddr *) &address, &size))
        return 0;
    return ntohs (address.ss_family == AF_INET6? ((struct sockaddr_in6 *) &address)->sin6_port
                                               : ((struct sockaddr_in *) &address)->sin_port);
}

json_t *
herd_frontend_stats (herd_frontend_t *self)
{
    assert (self);
    return json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:I, s:I, s:{s:I, s:I, s:I}}",
        "connections_open", (json_int_t) self->client_count,
        "connections_total", (json_int_t) self->connections,
        "connections_refused", (json_int_t) self->refused,
        "connections_refused_per_address", (json_int_t) self->refused_address,
        "connections_idle_closed", (json_int_t) self->idle_closed,
        "connections_evicted", (json_int_t) self->evicted,
        "clients_dropped_output_total", (json_int_t) self->output_dropped,
        "output_bytes", (json_int_t) self->output_total,
        "commands", "IAMAT", (json_int_t) self->iamats, "WHATSAT", (json_int_t) self->whatsats,
        "bad_lines", (json_int_t) self->bad_lines,
        "acks_withdrawn", (json_int_t) self->uncommitted,
        "iamats_refused", "store_full", (json_int_t) self->refused_full,
        "future", (json_int_t) self->refused_future, "journal", (json_int_t) self->refused_journal);
}

size_t
herd_frontend_connections (herd_frontend_t *self)
{
    assert (self);
    return self->client_count;
}

//  --------------------------------------------------------------------------
//  Selftest: the frontend in a loop of its own, with a store for a node,
//  and a non-blocking TCP client the test drives between loop turns

static herd_store_t *s_store = NULL;
static int s_commits = 0;

static int
s_test_accept (const herd_at_t *at, void *arg)
{
    (void) arg;
    return herd_store_offer (s_store, at);
}

static const char *
s_test_lookup (const char *client, herd_at_t *at, void *arg)
{
    (void) arg;
    return herd_store_lookup (s_store, client, at);
}

static int s_commit_fails = 0;     //  Commits still to fail

static int
s_test_commit (void *arg)
{
    (void) arg;
    s_commits++;
    return s_commit_fails-- > 0? -1: 0;
}

//  Turns the loop until the client has read text ending with terminator
static void
s_test_exchange (zloop_t *loop, int fd, const char *request, const char *terminator,
                 char *buffer, size_t size)
{
    if (*request)
        assert (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
    size_t held = 0;
    buffer [0] = 0;
    for (int turn = 0; turn < 500; turn++) {
        herd_loop_run_for (loop, 5);
        ssize_t got = read (fd, buffer + held, size - 1 - held);
        if (got > 0)
            held += got;
        buffer [held] = 0;
        if (got == 0 || (held >= strlen (terminator) && streq (buffer + held - strlen (terminator), terminator)))
            return;
    }
}

//  The next query the frontend sent the stand-in broker: [identity]
//  [request][query]
static zmsg_t *
s_test_places_query (zloop_t *loop, zsock_t *places)
{
    zmsg_t *msg = NULL;
    for (int round = 0; round < 200 && !msg; round++) {
        herd_loop_run_for (loop, 10);
        if (zsock_events (places) & ZMQ_POLLIN)
            msg = zmsg_recv (places);
    }
    assert (msg && zmsg_size (msg) == 3);
    assert (zframe_size (zmsg_last (msg)) == sizeof (herd_query_t));
    return msg;
}

//  Answers a query: [identity][request][JSON]
static void
s_test_places_answer (zmsg_t *msg, zsock_t *places)
{
    zframe_t *query = zmsg_last (msg);
    zmsg_remove (msg, query);
    zframe_destroy (&query);
    zmsg_addstr (msg, "{\"results\": [], \"status\": \"ZERO_RESULTS\"}");
    zmsg_send (&msg, places);
}

void
herd_frontend_test (bool verbose)
{
    printf (" * herd_frontend: ");
    if (verbose)
        printf ("\n");
    char *text = zsys_sprintf (
        "herd\n    log_traffic = %d\n    max_line = 100\n    max_clients = 2\n    security = off\n"
        "servers\n    F\n        client = 127.0.0.1:0\n        bus = inproc://herd-frontend-test\n",
        verbose);
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "frontend-test", &error);
    freen (text);
    assert (config);
    //  A stand-in for the places broker, where the frontend looks for it:
    //  we see each query, and answer when we choose
    char *places_endpoint = herd_places_endpoint ("F");
    zsock_t *places = zsock_new_router (places_endpoint);
    assert (places);
    freen (places_endpoint);
    zsock_set_rcvtimeo (places, 0);
    s_store = herd_store_new (100);
    zloop_t *loop = zloop_new ();
    herd_traffic_t *traffic = verbose? herd_traffic_new ("F"): NULL;
    herd_frontend_node_t node = { s_test_accept, s_test_lookup, s_test_commit, NULL, traffic };
    herd_frontend_t *frontend = herd_frontend_new (config, "F", loop, &node, &error);
    assert (frontend);
    int port = herd_frontend_port (frontend);
    assert (port > 0);

    struct sockaddr_in address = { 0 };
    address.sin_family = AF_INET;
    address.sin_port = htons (port);
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    fcntl (fd, F_SETFL, O_NONBLOCK);
    char buffer [8192];
    //  An IAMAT goes to the node's funnel, committed before its reply
    s_test_exchange (loop, fd, "IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n", "\n",
                     buffer, sizeof buffer);
    assert (!strncmp (buffer, "AT F +", 6));
    assert (strstr (buffer, " kiwi +34.068930-118.445127 1621464827.959498503\n"));
    assert (herd_store_size (s_store) == 1 && s_commits > 0);
    assert (streq (herd_store_lookup (s_store, "kiwi", NULL), strtok (buffer, "\n")));
    //  A WHATSAT asks the broker around the client's stored position, in
    //  metres, and holds the lines behind it until its answer comes
    const char *two = "WHATSAT kiwi 10 5\nWHATSAT nobody 1 1\n";
    assert (write (fd, two, strlen (two)) == (ssize_t) strlen (two));
    zmsg_t *query_msg = s_test_places_query (loop, places);
    herd_query_t query;
    memcpy (&query, zframe_data (zmsg_last (query_msg)), sizeof query);
    assert (query.latitude == 34.068930 && query.longitude == -118.445127);
    assert (query.radius_m == 10000 && query.max_results == 5);
    herd_loop_run_for (loop, 20);
    assert (read (fd, buffer, sizeof buffer) == -1);      //  Nothing yet
    s_test_places_answer (query_msg, places);
    s_test_exchange (loop, fd, "", "? WHATSAT nobody 1 1\n", buffer, sizeof buffer);
    assert (!strncmp (buffer, "AT F +", 6));
    char *json = strchr (buffer, '{');
    assert (json && streq (json, "{\"results\": [], \"status\": \"ZERO_RESULTS\"}\n\n? WHATSAT nobody 1 1\n"));
    //  A client that leaves before its answer: the answer is dropped, and
    //  never reaches whoever has its descriptor now
    int leaver = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (leaver, (struct sockaddr *) &address, sizeof address) == 0);
    assert (write (leaver, "WHATSAT kiwi 1 1\n", 17) == 17);     //  17 bytes
    query_msg = s_test_places_query (loop, places);
    //  It resets the connection (a plain close is a half-close, which a
    //  client may do and still wait for its answer)
    struct linger reset = { 1, 0 };
    setsockopt (leaver, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close (leaver);
    for (int round = 0; round < 100 && herd_frontend_connections (frontend) > 1; round++)
        herd_loop_run_for (loop, 10);
    assert (herd_frontend_connections (frontend) == 1);
    int heir = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (heir, (struct sockaddr *) &address, sizeof address) == 0);
    fcntl (heir, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, heir, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, "? HELLO\n"));
    s_test_places_answer (query_msg, places);
    herd_loop_run_for (loop, 50);
    assert (read (heir, buffer, sizeof buffer) == -1 && errno == EAGAIN);
    close (heir);
    //  A commit that fails turns the pass's AT replies into "?", and
    //  leaves the other replies as they were
    s_commit_fails = 1;
    s_test_exchange (loop, fd, "IAMAT fig +1+1 1.5\nHELLO\nIAMAT date +2+2 2.5\n", "? IAMAT date +2+2 2.5\n",
                     buffer, sizeof buffer);
    assert (streq (buffer, "? IAMAT fig +1+1 1.5\n? HELLO\n? IAMAT date +2+2 2.5\n"));
    s_test_exchange (loop, fd, "IAMAT fig +1+1 3.5\n", "\n", buffer, sizeof buffer);
    assert (!strncmp (buffer, "AT F +", 6));

    //  max_clients = 2, both taken: a third connection makes room by
    //  closing the oldest that sent no line yet (second), and is served
    int second = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (second, (struct sockaddr *) &address, sizeof address) == 0);
    for (int round = 0; round < 100 && herd_frontend_connections (frontend) < 2; round++)
        herd_loop_run_for (loop, 10);
    assert (herd_frontend_connections (frontend) == 2);
    int third = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (third, (struct sockaddr *) &address, sizeof address) == 0);
    fcntl (third, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, third, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, "? HELLO\n"));
    fcntl (second, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, second, "", "never", buffer, sizeof buffer);
    assert (read (second, buffer, sizeof buffer) == 0);     //  Closed to make room
    //  Both that remain have sent a line: a fourth is refused, not served
    int fourth = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (fourth, (struct sockaddr *) &address, sizeof address) == 0);
    fcntl (fourth, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, fourth, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, ""));                //  Closed without a reply
    assert (herd_frontend_connections (frontend) == 2);
    json_t *stats = herd_frontend_stats (frontend);
    assert (json_integer_value (json_object_get (stats, "connections_refused")) == 1);
    assert (json_integer_value (json_object_get (stats, "connections_evicted")) == 1);
    assert (json_integer_value (json_object_get (stats, "connections_total")) == 5);
    assert (json_integer_value (json_object_get (json_object_get (stats, "commands"), "WHATSAT")) == 3);
    json_decref (stats);
    close (fourth);
    close (third);
    close (second);

    //  An over-long line is answered with its first 100 bytes, then closed
    char long_line [300];
    memset (long_line, 'x', sizeof long_line);
    long_line [sizeof long_line - 1] = '\n';
    long_line [sizeof long_line - 2] = 0;
    s_test_exchange (loop, fd, long_line, "\n", buffer, sizeof buffer);
    assert (strlen (buffer) == 2 + 100 + 1);
    s_test_exchange (loop, fd, "", "never", buffer, sizeof buffer);
    assert (read (fd, buffer, sizeof buffer) == 0);         //  Closed
    close (fd);

    herd_frontend_destroy (&frontend);
    assert (frontend == NULL);
    herd_traffic_destroy (&traffic);
    zloop_destroy (&loop);
    herd_store_destroy (&s_store);
    zsock_destroy (&places);
    herd_config_destroy (&config);
    printf ("OK\n");
}
