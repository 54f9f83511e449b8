//  frontend/herd_frontend.c: the client-facing event loop of one server.
//
//  Why epoll inside zloop: zloop polls its sockets with zmq_poll, which
//  costs O(n) per wake-up in the number of items, fine for the pipe, the
//  bus and the places socket but not for thousands of clients. So every
//  client fd lives in one epoll set, and that set's fd is one zloop item:
//  a wake-up costs O(ready clients), the way Redis's ae loop does.

#include "herd_classes.h"
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define S_EVENTS_MAX        256     //  epoll events taken per wake-up
#define S_READ_SIZE         16384   //  Input room beyond the line limit
#define S_LISTENER_TAG      UINT64_MAX
#define S_ACCEPT_RETRY      100     //  msecs to pause accepting on EMFILE

//  One client connection
typedef struct {
    uint64_t id;                //  Unique for the server's lifetime
    int fd;                     //  Non-blocking socket
    char peer [64];             //  "address:port", for the log
    char *input;                //  Bytes read, not yet a whole line
    size_t input_size;
    char *output;               //  Reply bytes not yet written
    size_t output_start;        //  First unwritten byte
    size_t output_end;          //  End of queued bytes
    size_t output_capacity;
    struct timespec receipt;    //  When the input bytes arrived
    bool eof;                   //  Peer closed its writing side
    bool closing;               //  Close once output drains
    bool dead;                  //  Close now
    const char *close_reason;   //  Static text, for the log
    bool waiting;               //  A WHATSAT is at the places broker
    char *whatsat_line;         //  That WHATSAT's AT line (owned)
    uint32_t events;            //  What epoll watches for now
} s_client_t;

//  Request id of a WHATSAT at the places broker
typedef struct {
    uint64_t client_id;
    int fd;
} s_request_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zloop_t *loop;              //  Our one event loop
    herd_config_t *config;      //  Borrowed
    char *server;               //  Our name, first field of AT replies
    int listener;               //  Listening TCP socket, or -1
    bool listener_paused;       //  Out of fds: accepting paused
    int epoll_fd;               //  Client fds and the listener
    s_client_t **clients;       //  Indexed by fd (owned)
    size_t clients_capacity;
    size_t client_count;
    uint64_t next_id;
    herd_store_t *store;        //  Latest AT line per client (owned)
    herd_journal_t *journal;    //  The store on disk (owned)
    herd_bus_t *bus;            //  Update flooding (owned)
    herd_sync_t *sync;          //  Catch-up with neighbours (owned)
    zsock_t *admin;             //  ROUTER for state requests, or NULL
    zsock_t *places;            //  DEALER to the places broker
    size_t max_line;            //  Longest command line
    size_t max_pending;         //  Output bound per client
    size_t max_clients;
    size_t input_capacity;      //  max_line + room for a read
    bool log_traffic;           //  Log every line in and reply out
    char *scratch;              //  Where AT lines are built
    size_t scratch_capacity;
    int64_t started;            //  zclock_mono at start, for uptime
    uint64_t connections;       //  Counters for STATS: accepted since start
    uint64_t iamats;
    uint64_t whatsats;
    uint64_t bad_lines;
    uint64_t updates_in;        //  Accepted from neighbours' streams
    uint64_t updates_caught_up; //  Accepted from catch-up snapshots
} s_frontend_t;

//  A stats request waiting for the places broker's counters carries the
//  admin asker's routing id after this prefix, in place of a request id
#define S_STATS_PREFIX "stats:"

//  --------------------------------------------------------------------------
//  Connections

static void
s_client_destroy (s_client_t **client_p)
{
    s_client_t *client = *client_p;
    if (client) {
        freen (client->input);
        freen (client->output);
        freen (client->whatsat_line);
        freen (client);
        *client_p = NULL;
    }
}

static void
s_client_close (s_frontend_t *self, s_client_t *client)
{
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, client->fd, NULL);
    close (client->fd);
    self->clients [client->fd] = NULL;
    self->client_count--;
    zsys_info ("client %" PRIu64 " %s closed: %s", client->id, client->peer,
               client->close_reason? client->close_reason: "done");
    s_client_destroy (&client);
}

static void
s_client_kill (s_client_t *client, const char *reason)
{
    if (!client->dead) {
        client->dead = true;
        client->close_reason = reason;
    }
}

//  Queues reply bytes; a client past its bound is dropped, not waited for
static void
s_client_append (s_frontend_t *self, s_client_t *client, const char *data, size_t size)
{
    if (client->dead)
        return;
    size_t pending = client->output_end - client->output_start;
    if (pending + size > self->max_pending) {
        zsys_warning ("client %" PRIu64 " %s: %zu reply bytes pending, over herd/max_pending; dropping it",
                      client->id, client->peer, pending + size);
        s_client_kill (client, "not reading its replies");
        return;
    }
    if (client->output_end + size > client->output_capacity) {
        //  Slide pending bytes to the front, then grow if still short
        if (pending)
            memmove (client->output, client->output + client->output_start, pending);
        client->output_start = 0;
        client->output_end = pending;
        size_t capacity = client->output_capacity? client->output_capacity: 4096;
        while (capacity < pending + size)
            capacity *= 2;
        if (capacity != client->output_capacity) {
            client->output = (char *) realloc (client->output, capacity);
            assert (client->output);
            client->output_capacity = capacity;
        }
    }
    memcpy (client->output + client->output_end, data, size);
    client->output_end += size;
}

static void
s_log_traffic (s_frontend_t *self, s_client_t *client, char direction,
               const char *data, size_t size, const char *suffix)
{
    if (self->log_traffic) {
        char sample [300];
        zsys_info ("client %" PRIu64 " %c %s%s", client->id, direction,
                   herd_log_sample (data, size, sample, sizeof sample), suffix);
    }
}

//  "? <the line as received>"
static void
s_reply_invalid (s_frontend_t *self, s_client_t *client, const char *line, size_t size,
                 const char *reason)
{
    if (self->log_traffic) {
        char sample [300];
        zsys_info ("client %" PRIu64 " > ? %s   (%s)", client->id,
                   herd_log_sample (line, size, sample, sizeof sample), reason);
    }
    s_client_append (self, client, "? ", 2);
    s_client_append (self, client, line, size);
    s_client_append (self, client, "\n", 1);
}

//  Every update, from a client, the bus or a catch-up, goes through here:
//  stored if newer, then journaled (before any reply goes out) and flooded
static int
s_accept_update (s_frontend_t *self, const char *line, size_t size)
{
    herd_at_t at;
    int stored = herd_store_offer (self->store, line, size, &at);
    if (stored == HERD_STORE_STORED) {
        if (self->journal)
            herd_journal_append (self->journal, line, size);
        herd_bus_publish (self->bus, at.client.start, at.client.size, line, size);
    }
    return stored;
}

static void
s_handle_iamat (s_frontend_t *self, s_client_t *client, herd_command_t *command)
{
    char skew [48];
    herd_protocol_skew (&client->receipt, command->time, skew, sizeof skew);
    int size = snprintf (self->scratch, self->scratch_capacity, "AT %s %s %.*s %.*s %.*s",
                         self->server, skew,
                         (int) command->client.size, command->client.start,
                         (int) command->coordinates.size, command->coordinates.start,
                         (int) command->time.size, command->time.start);
    assert (size > 0 && (size_t) size < self->scratch_capacity);
    int stored = s_accept_update (self, self->scratch, size);
    assert (stored != HERD_STORE_INVALID);  //  We just built it from a valid IAMAT
    if (stored != HERD_STORE_STORED && self->log_traffic)
        zsys_info ("client %" PRIu64 " IAMAT for %.*s is not newer than the stored one; kept it",
                   client->id, (int) command->client.size, command->client.start);
    s_client_append (self, client, self->scratch, size);
    s_client_append (self, client, "\n", 1);
    s_log_traffic (self, client, '>', self->scratch, size, "");
}

//  Ends a WHATSAT: its AT line, the places JSON, an empty line
static void
s_reply_whatsat (s_frontend_t *self, s_client_t *client, const char *json)
{
    size_t line_size = strlen (client->whatsat_line);
    s_client_append (self, client, client->whatsat_line, line_size);
    s_client_append (self, client, "\n", 1);
    s_client_append (self, client, json, strlen (json));
    s_client_append (self, client, "\n\n", 2);
    char suffix [64];
    snprintf (suffix, sizeof suffix, " + places JSON (%zu bytes)", strlen (json));
    s_log_traffic (self, client, '>', client->whatsat_line, line_size, suffix);
    freen (client->whatsat_line);
    client->waiting = false;
}

//  An answer the loop makes itself, in the places reply's shape
static void
s_reply_places_error (s_frontend_t *self, s_client_t *client, const char *message)
{
    json_t *response = herd_nearby_error ("%s", message);
    char *text = herd_nearby_text (response, HERD_RESULTS_MAX);
    json_decref (response);
    s_reply_whatsat (self, client, text);
    freen (text);
}

static void
s_handle_whatsat (s_frontend_t *self, s_client_t *client, herd_command_t *command,
                  const char *line, size_t size)
{
    char id [HERD_CLIENT_ID_MAX + 1];
    memcpy (id, command->client.start, command->client.size);
    id [command->client.size] = 0;
    herd_at_t at;
    const char *stored = herd_store_lookup (self->store, id, &at);
    if (!stored) {
        s_reply_invalid (self, client, line, size, "unknown client");
        return;
    }
    //  The reply carries the line as it is now, whatever comes later
    client->whatsat_line = strdup (stored);
    client->waiting = true;
    s_request_t request = { client->id, client->fd };
    herd_query_t query = { at.latitude, at.longitude, command->radius_km * 1000,
                           (uint32_t) command->max_results };
    //  The DEALER has a send timeout of 0: a full queue fails, never blocks
    if (zsock_send (self->places, "bb", &request, sizeof request, &query, sizeof query) == -1) {
        zsys_warning ("client %" PRIu64 ": places broker not taking queries", client->id);
        s_reply_places_error (self, client, "places: broker is not taking queries");
    }
}

static void
s_handle_line (s_frontend_t *self, s_client_t *client, const char *line, size_t size)
{
    //  line comes without its line ending (\n or \r\n): it is what "?" echoes
    herd_command_t command;
    herd_protocol_parse (line, size, &command);
    if (command.kind == HERD_LINE_EMPTY)
        return;
    s_log_traffic (self, client, '<', line, size, "");
    if (command.kind == HERD_LINE_IAMAT) {
        self->iamats++;
        s_handle_iamat (self, client, &command);
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
s_process_input (s_frontend_t *self, s_client_t *client)
{
    size_t start = 0;
    while (!client->waiting && !client->closing && !client->dead) {
        char *newline = (char *) memchr (client->input + start, '\n', client->input_size - start);
        if (!newline)
            break;
        size_t size = newline - (client->input + start);
        size_t content = size && newline [-1] == '\r'? size - 1: size;
        if (content > self->max_line)
            break;                  //  Handled as over-long below
        s_handle_line (self, client, client->input + start, content);
        start += size + 1;
    }
    memmove (client->input, client->input + start, client->input_size - start);
    client->input_size -= start;
    if (client->waiting || client->closing || client->dead)
        return;
    //  Over-long: more than max_line bytes before a line ending. The loop
    //  above only stops at a newline for such a line; a partial line may
    //  still be waiting for the \n after its \r
    bool over_long;
    if (memchr (client->input, '\n', client->input_size))
        over_long = true;
    else
    if (client->eof)
        over_long = client->input_size > self->max_line;
    else
        over_long = client->input_size > self->max_line + 1
                || (client->input_size == self->max_line + 1
                    && client->input [self->max_line] != '\r');
    if (over_long) {
        zsys_warning ("client %" PRIu64 " %s: line longer than %zu bytes; answering and closing",
                      client->id, client->peer, self->max_line);
        s_reply_invalid (self, client, client->input, self->max_line, "line too long");
        client->closing = true;
        client->close_reason = "line too long";
        client->input_size = 0;
    }
    else
    if (client->eof && client->input_size > 0) {
        //  A last line with no \n, then half-close: still a command
        s_handle_line (self, client, client->input, client->input_size);
        client->input_size = 0;
    }
}

static void
s_client_read (s_frontend_t *self, s_client_t *client)
{
    ssize_t got = read (client->fd, client->input + client->input_size,
                        self->input_capacity - client->input_size);
    if (got > 0) {
        clock_gettime (CLOCK_REALTIME, &client->receipt);
        client->input_size += got;
    }
    else
    if (got == 0)
        client->eof = true;
    else {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            s_client_kill (client, errno == ECONNRESET? "reset by peer": "read error");
        return;
    }
    s_process_input (self, client);
}

//  Writes what it can, flushes, closes or re-arms epoll as the state says
static void
s_client_settle (s_frontend_t *self, s_client_t *client)
{
    //  Group commit: the journal gets every update this batch of commands
    //  made, in one write (and one fsync under "always"), before any reply
    //  that acknowledges them leaves
    if (self->journal)
        herd_journal_flush (self->journal);
    while (!client->dead && client->output_end > client->output_start) {
        ssize_t sent = send (client->fd, client->output + client->output_start,
                             client->output_end - client->output_start, MSG_NOSIGNAL);
        if (sent > 0)
            client->output_start += sent;
        else
        if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else
        if (!(sent == -1 && errno == EINTR))
            s_client_kill (client, "write error (peer gone)");
    }
    if (client->output_start == client->output_end)
        client->output_start = client->output_end = 0;
    bool drained = client->output_end == 0;
    if (client->dead
    || (drained && client->closing)
    || (drained && client->eof && !client->waiting && client->input_size == 0)) {
        if (!client->close_reason)
            client->close_reason = client->eof? "client finished": "done";
        s_client_close (self, client);
        return;
    }
    uint32_t events = 0;
    if (!client->eof && !client->closing && !client->waiting
    &&  client->input_size < self->input_capacity)
        events |= EPOLLIN | EPOLLRDHUP;
    if (!drained)
        events |= EPOLLOUT;
    if (events != client->events) {
        struct epoll_event event = { events, { .u64 = ((uint64_t) (uint32_t) client->id << 32)
                                                      | (uint32_t) client->fd } };
        epoll_ctl (self->epoll_fd, EPOLL_CTL_MOD, client->fd, &event);
        client->events = events;
    }
}

static void
s_client_new (s_frontend_t *self, int fd, struct sockaddr_storage *address)
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
    client->fd = fd;
    client->input = (char *) malloc (self->input_capacity);
    assert (client->input);
    char host [INET6_ADDRSTRLEN] = "?";
    char port [8] = "?";
    getnameinfo ((struct sockaddr *) address, sizeof *address, host, sizeof host,
                 port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf (client->peer, sizeof client->peer, "%s:%s", host, port);
    int on = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    client->events = EPOLLIN | EPOLLRDHUP;
    struct epoll_event event = { client->events, { .u64 = ((uint64_t) (uint32_t) client->id << 32)
                                                          | (uint32_t) fd } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    self->clients [fd] = client;
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
    s_frontend_t *self = (s_frontend_t *) arg;
    struct epoll_event event = { EPOLLIN, { .u64 = S_LISTENER_TAG } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, self->listener, &event);
    self->listener_paused = false;
    return 0;
}

static void
s_accept (s_frontend_t *self)
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
                self->listener_paused = true;
                zloop_timer (self->loop, S_ACCEPT_RETRY, 1, s_resume_accepting, self);
            }
            return;                 //  EAGAIN: no more waiting
        }
        if (self->client_count >= self->max_clients) {
            zsys_warning ("refused a connection: %zu clients open (herd/max_clients)",
                          self->client_count);
            close (fd);
            continue;
        }
        s_client_new (self, fd, &address);
    }
}

static int
s_handle_events (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    s_frontend_t *self = (s_frontend_t *) arg;
    struct epoll_event events [S_EVENTS_MAX];
    int count = epoll_wait (self->epoll_fd, events, S_EVENTS_MAX, 0);
    for (int index = 0; index < count; index++) {
        uint64_t tag = events [index].data.u64;
        if (tag == S_LISTENER_TAG) {
            s_accept (self);
            continue;
        }
        int fd = (int) (uint32_t) tag;
        s_client_t *client = (size_t) fd < self->clients_capacity? self->clients [fd]: NULL;
        //  The fd may have been closed and reused earlier in this batch
        if (!client || (uint32_t) client->id != (uint32_t) (tag >> 32))
            continue;
        uint32_t what = events [index].events;
        if (what & (EPOLLIN | EPOLLRDHUP) && client->events & EPOLLIN)
            s_client_read (self, client);
        if (what & (EPOLLERR | EPOLLHUP))
            s_client_kill (client, "connection reset");
        s_client_settle (self, client);
    }
    return 0;
}

//  The server's counters as JSON text, with the places broker's. Caller frees.
static char *
s_stats (s_frontend_t *self, const char *places_json)
{
    json_t *places = json_loads (places_json, 0, NULL);
    json_t *stats = json_pack ("{s:s, s:I, s:I, s:I, s:{s:I, s:I}, s:I, s:{s:I, s:I, s:I}, s:I, s:o}",
        "server", self->server,
        "uptime_s", (json_int_t) ((zclock_mono () - self->started) / 1000),
        "connections_open", (json_int_t) self->client_count,
        "connections_total", (json_int_t) self->connections,
        "commands", "IAMAT", (json_int_t) self->iamats, "WHATSAT", (json_int_t) self->whatsats,
        "bad_lines", (json_int_t) self->bad_lines,
        "updates", "in", (json_int_t) self->updates_in,
        "from_catch_up", (json_int_t) self->updates_caught_up,
        "out", (json_int_t) herd_bus_published (self->bus),
        "clients_stored", (json_int_t) herd_store_size (self->store),
        "places", places? places: json_object ());
    char *text = json_dumps (stats, JSON_COMPACT);
    json_decref (stats);
    return text;
}

//  --------------------------------------------------------------------------
//  Places answers and bus updates

static int
s_handle_places (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_frontend_t *self = (s_frontend_t *) arg;
    zframe_t *request_frame = NULL;
    char *json = NULL;
    if (zsock_recv (reader, "fs", &request_frame, &json) == -1)
        return 0;
    s_request_t request;
    s_client_t *client = NULL;
    size_t prefix = strlen (S_STATS_PREFIX);
    if (request_frame && zframe_size (request_frame) > prefix
    &&  !memcmp (zframe_data (request_frame), S_STATS_PREFIX, prefix) && json && self->admin) {
        zframe_t *asker = zframe_new (zframe_data (request_frame) + prefix,
                                      zframe_size (request_frame) - prefix);
        char *stats = s_stats (self, json);
        zsock_send (self->admin, "fs", asker, stats);
        freen (stats);
        zframe_destroy (&asker);
    }
    else
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
        s_client_settle (self, client);
    }
    zframe_destroy (&request_frame);
    freen (json);
    return 0;
}

static void
s_handle_update (const char *neighbour, const char *line, size_t size, void *arg)
{
    s_frontend_t *self = (s_frontend_t *) arg;
    //  Not flushed here: nobody waits on a neighbour's update, and what a
    //  crash loses of it the next catch-up brings back. The next reply or
    //  the one-second timer writes it.
    int stored = s_accept_update (self, line, size);
    self->updates_in += stored == HERD_STORE_STORED;
    if (stored == HERD_STORE_STALE && self->log_traffic)
        zsys_info ("bus: update from %s is not newer than the stored one; not flooded", neighbour);
}

static void
s_handle_resync (const char *neighbour, const char *why, void *arg)
{
    s_frontend_t *self = (s_frontend_t *) arg;
    herd_sync_request (self->sync, neighbour, why);
}

static bool
s_handle_snapshot_line (const char *neighbour, const char *line, size_t size, void *arg)
{
    (void) neighbour;
    s_frontend_t *self = (s_frontend_t *) arg;
    bool fresh = s_accept_update (self, line, size) == HERD_STORE_STORED;
    self->updates_caught_up += fresh;
    return fresh;
}

static void
s_handle_sync_failed (const char *neighbour, void *arg)
{
    s_frontend_t *self = (s_frontend_t *) arg;
    herd_bus_expect_resync (self->bus, neighbour);
}

//  Once a second: the everysec fsync, and compaction when due
static int
s_maintain_journal (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_frontend_t *self = (s_frontend_t *) arg;
    herd_journal_sync (self->journal);
    herd_journal_compact_if_needed (self->journal, self->store);
    return 0;
}

//  The server's state as JSON text: for operators and tests. Caller frees.
static char *
s_state (s_frontend_t *self)
{
    char digest [24];
    snprintf (digest, sizeof digest, "%016" PRIx64, herd_store_digest (self->store));
    json_t *state = json_pack ("{s:s, s:I, s:s, s:b, s:I, s:I, s:o, s:o}",
        "server", self->server,
        "clients", (json_int_t) herd_store_size (self->store),
        "digest", digest,
        "caught_up", herd_sync_caught_up (self->sync),
        "connections", (json_int_t) self->client_count,
        "journal_bytes", (json_int_t) (self->journal? herd_journal_size (self->journal): 0),
        "links", herd_bus_links (self->bus),
        "catch_up", herd_sync_state (self->sync));
    char *text = json_dumps (state, JSON_COMPACT);
    json_decref (state);
    return text;
}

//  Admin requests: [identity][command] -> [identity][JSON]
static int
s_handle_admin (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_frontend_t *self = (s_frontend_t *) arg;
    zframe_t *identity = NULL;
    char *command = NULL;
    if (zsock_recv (reader, "fs", &identity, &command) == -1)
        return 0;
    char *reply = NULL;
    if (command && streq (command, "STATE"))
        reply = s_state (self);
    else
    if (command && streq (command, "STATS")) {
        //  The places counters live in the broker's thread: ask it, and
        //  answer when it does (s_handle_places)
        zframe_t *request = zframe_new (NULL, strlen (S_STATS_PREFIX) + zframe_size (identity));
        memcpy (zframe_data (request), S_STATS_PREFIX, strlen (S_STATS_PREFIX));
        memcpy (zframe_data (request) + strlen (S_STATS_PREFIX), zframe_data (identity),
                zframe_size (identity));
        if (zsock_send (self->places, "fs", request, "STATS") == -1)
            reply = s_stats (self, "{}");
        zframe_destroy (&request);
    }
    else
        reply = zsys_sprintf ("{\"error\": \"unknown request; try STATE or STATS\"}");
    if (reply)
        zsock_send (reader, "fs", identity, reply);
    freen (reply);
    freen (command);
    zframe_destroy (&identity);
    return 0;
}

//  --------------------------------------------------------------------------
//  Start and stop

static int
s_listen (s_frontend_t *self, const char *bind_to, char **error_p)
{
    char *host = strdup (bind_to);
    char *colon = strrchr (host, ':');
    *colon = 0;
    const char *port = colon + 1;
    const char *node = streq (host, "*") || !*host? NULL: host;
    //  Strip [ ] from an IPv6 literal
    if (node && *node == '[' && node [strlen (node) - 1] == ']') {
        host [strlen (host) - 1] = 0;
        node = host + 1;
    }
    struct addrinfo hints = { 0 }, *addresses = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo (node, port, &hints, &addresses);
    if (rc) {
        *error_p = zsys_sprintf ("cannot listen on %s: %s", bind_to, gai_strerror (rc));
        freen (host);
        return -1;
    }
    int fd = socket (addresses->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd == -1
    ||  bind (fd, addresses->ai_addr, addresses->ai_addrlen) == -1
    ||  listen (fd, SOMAXCONN) == -1) {
        *error_p = zsys_sprintf ("cannot listen on %s: %s", bind_to, strerror (errno));
        if (fd != -1)
            close (fd);
        fd = -1;
    }
    freeaddrinfo (addresses);
    freen (host);
    if (fd == -1)
        return -1;
    self->listener = fd;
    struct epoll_event event = { EPOLLIN, { .u64 = S_LISTENER_TAG } };
    epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event);
    return 0;
}

//  The port we listen on (useful when the config says 0)
static int
s_port (s_frontend_t *self)
{
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    if (self->listener == -1 || getsockname (self->listener, (struct sockaddr *) &address, &size))
        return 0;
    return ntohs (address.ss_family == AF_INET6? ((struct sockaddr_in6 *) &address)->sin6_port
                                               : ((struct sockaddr_in *) &address)->sin_port);
}

static int
s_start (s_frontend_t *self, char **error_p)
{
    //  The store comes back from disk before any client is accepted
    if (!herd_config_number (self->config, "herd/journal"))
        zsys_warning ("journal: off (herd/journal = 0): the store lives in memory only");
    else {
        char *path = zsys_sprintf ("%s/%s.journal", herd_config_string (self->config, "herd/data_dir"),
                                   self->server);
        self->journal = herd_journal_new (path, herd_config_string (self->config, "herd/fsync"), error_p);
        freen (path);
        if (!self->journal)
            return -1;
        herd_journal_replay (self->journal, self->store);
        zloop_timer (self->loop, 1000, 0, s_maintain_journal, self);
    }
    if (s_listen (self, herd_config_client_bind (self->config, self->server), error_p))
        return -1;
    self->bus = herd_bus_new (self->config, self->server, error_p);
    if (!self->bus)
        return -1;
    self->sync = herd_sync_new (self->config, self->server, self->store, error_p);
    if (!self->sync)
        return -1;
    //  Catch-up first: the bus asks for it as soon as a neighbour is heard
    herd_sync_attach (self->sync, self->loop, s_handle_snapshot_line, s_handle_sync_failed, self);
    herd_bus_attach (self->bus, self->loop, s_handle_update, s_handle_resync, self);
    const char *admin = herd_config_server_endpoint (self->config, self->server, "admin");
    if (admin) {
        self->admin = zsock_new (ZMQ_ROUTER);
        zsock_set_linger (self->admin, 0);
        zsock_set_rcvtimeo (self->admin, HERD_LOOP_RCVTIMEO);
        if (zsock_bind (self->admin, "%s", admin) == -1) {
            *error_p = zsys_sprintf ("cannot bind admin endpoint %s: %s", admin, zmq_strerror (zmq_errno ()));
            return -1;
        }
        zloop_reader (self->loop, self->admin, s_handle_admin, self);
        zsys_info ("admin: answering state requests on %s", admin);
    }
    char *endpoint = herd_places_endpoint (self->server);
    self->places = zsock_new (ZMQ_DEALER);
    zsock_set_sndtimeo (self->places, 0);
    zsock_set_rcvtimeo (self->places, HERD_LOOP_RCVTIMEO);
    zsock_set_sndhwm (self->places, (int) self->max_clients + 1000);
    zsock_set_rcvhwm (self->places, (int) self->max_clients + 1000);
    zsock_connect (self->places, "%s", endpoint);
    freen (endpoint);
    zloop_reader (self->loop, self->places, s_handle_places, self);
    zmq_pollitem_t item = { NULL, self->epoll_fd, ZMQ_POLLIN, 0 };
    zloop_poller (self->loop, &item, s_handle_events, self);
    zsys_info ("frontend: %s listening for clients on %s (port %d)", self->server,
               herd_config_client_bind (self->config, self->server), s_port (self));
    return 0;
}

static int
s_handle_pipe (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_frontend_t *self = (s_frontend_t *) arg;
    char *command = zstr_recv (reader);
    if (!command || streq (command, "$TERM")) {
        freen (command);
        return -1;
    }
    if (streq (command, "START")) {
        char *error = NULL;
        if (s_start (self, &error) == 0)
            zstr_send (reader, "OK");
        else
            zstr_sendf (reader, "ERROR %s", error);
        freen (error);
    }
    else
    if (streq (command, "PORT"))
        zstr_sendf (reader, "%d", s_port (self));
    else {
        zsys_error ("frontend: unknown command %s", command);
        assert (false);
    }
    freen (command);
    return 0;
}

void
herd_frontend_actor (zsock_t *pipe, void *args)
{
    herd_frontend_args_t *frontend_args = (herd_frontend_args_t *) args;
    s_frontend_t self_data = { 0 }, *self = &self_data;
    self->pipe = pipe;
    self->config = frontend_args->config;
    self->server = strdup (frontend_args->server);
    self->listener = -1;
    self->max_line = herd_config_number (self->config, "herd/max_line");
    self->max_pending = herd_config_number (self->config, "herd/max_pending");
    self->max_clients = herd_config_number (self->config, "herd/max_clients");
    self->log_traffic = herd_config_number (self->config, "herd/log_traffic");
    self->input_capacity = self->max_line + 2 + S_READ_SIZE;
    self->scratch_capacity = self->max_line + strlen (self->server) + 64;
    self->scratch = (char *) malloc (self->scratch_capacity);
    self->clients_capacity = 1024;
    self->clients = (s_client_t **) calloc (self->clients_capacity, sizeof (s_client_t *));
    self->store = herd_store_new (herd_config_number (self->config, "herd/max_stored"));
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    assert (self->scratch && self->clients && self->epoll_fd != -1);
    self->started = zclock_mono ();
    self->loop = zloop_new ();
    //  Signals stop the process through main, which sends us $TERM
    zloop_set_nonstop (self->loop, true);
    zloop_reader (self->loop, pipe, s_handle_pipe, self);
    zsock_signal (pipe, 0);

    zloop_start (self->loop);

    size_t open = self->client_count;
    for (size_t fd = 0; fd < self->clients_capacity; fd++)
        if (self->clients [fd]) {
            self->clients [fd]->close_reason = "server shutting down";
            s_client_close (self, self->clients [fd]);
        }
    zsys_info ("frontend: stopped; closed %zu connections, %zu clients stored",
               open, herd_store_size (self->store));
    zloop_destroy (&self->loop);
    zsock_destroy (&self->places);
    zsock_destroy (&self->admin);
    herd_sync_destroy (&self->sync);
    herd_bus_destroy (&self->bus);
    herd_journal_destroy (&self->journal);
    herd_store_destroy (&self->store);
    if (self->listener != -1)
        close (self->listener);
    close (self->epoll_fd);
    freen (self->clients);
    freen (self->scratch);
    freen (self->server);
}

//  --------------------------------------------------------------------------
//  Selftest: one server on a free port, one TCP client

//  Reads until the text so far ends with terminator; returns bytes held
static size_t
s_read_until (int fd, char *buffer, size_t size, const char *terminator)
{
    size_t held = 0;
    while (held + 1 < size) {
        ssize_t got = read (fd, buffer + held, size - 1 - held);
        if (got <= 0)
            break;
        held += got;
        buffer [held] = 0;
        if (held >= strlen (terminator) && streq (buffer + held - strlen (terminator), terminator))
            break;
    }
    buffer [held] = 0;
    return held;
}

void
herd_frontend_test (bool verbose)
{
    printf (" * herd_frontend: ");
    if (verbose)
        printf ("\n");
    char *text = zsys_sprintf (
        "herd\n    log_traffic = %d\n    max_line = 100\n    data_dir = /tmp/herd-frontend-test-%d\n"
        "places\n    provider = none\n    workers = 1\n"
        "    google\n        key_env = HERD_TEST_NO_SUCH_KEY\n"
        "servers\n    T\n        client = 127.0.0.1:0\n"
        "        bus = inproc://herd-frontend-test\n", verbose, getpid ());
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "frontend-test", &error);
    freen (text);
    assert (config);
    herd_places_args_t places_args = { config, "T" };
    zactor_t *places = zactor_new (herd_places_actor, &places_args);
    zstr_send (places, "START");
    char *reply = zstr_recv (places);
    assert (streq (reply, "OK"));
    freen (reply);
    herd_frontend_args_t frontend_args = { config, "T" };
    zactor_t *frontend = zactor_new (herd_frontend_actor, &frontend_args);
    zstr_send (frontend, "START");
    reply = zstr_recv (frontend);
    assert (streq (reply, "OK"));
    freen (reply);
    zstr_send (frontend, "PORT");
    reply = zstr_recv (frontend);
    int port = atoi (reply);
    freen (reply);
    assert (port > 0);

    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { 0 };
    address.sin_family = AF_INET;
    address.sin_port = htons (port);
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct timeval timeout = { 5, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int rc = connect (fd, (struct sockaddr *) &address, sizeof address);
    assert (rc == 0);
    //  Pipelined: three commands and a blank line in one write
    const char *commands = "IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n"
                           "\n"
                           "HELLO there\r\n"
                           "WHATSAT kiwi 10 5\n";
    assert (write (fd, commands, strlen (commands)) == (ssize_t) strlen (commands));
    char buffer [8192];
    s_read_until (fd, buffer, sizeof buffer, "}\n\n");
    if (verbose)
        printf ("%s", buffer);
    assert (!strncmp (buffer, "AT T +", 6));
    char *second = strchr (buffer, '\n') + 1;
    assert (!strncmp (second, "? HELLO there\n", 14));
    char *third = strchr (second, '\n') + 1;
    assert (!strncmp (third, "AT T +", 6));
    assert (strstr (third, " kiwi +34.068930-118.445127 1621464827.959498503\n{"));
    assert (strstr (third, "UNKNOWN_ERROR"));

    //  An over-long line is answered with its first 100 bytes, then closed
    char long_line [300];
    memset (long_line, 'x', sizeof long_line);
    long_line [sizeof long_line - 1] = '\n';
    assert (write (fd, long_line, sizeof long_line) == (ssize_t) sizeof long_line);
    size_t held = s_read_until (fd, buffer, sizeof buffer, "\n");
    assert (held == 2 + 100 + 1);
    assert (read (fd, buffer, sizeof buffer) == 0);      //  Closed
    close (fd);

    zactor_destroy (&frontend);
    zactor_destroy (&places);
    herd_config_destroy (&config);
    char *folder = zsys_sprintf ("/tmp/herd-frontend-test-%d", getpid ());
    char *journal = zsys_sprintf ("%s/T.journal", folder);
    unlink (journal);
    rmdir (folder);
    freen (journal);
    freen (folder);
    printf ("OK\n");
}
