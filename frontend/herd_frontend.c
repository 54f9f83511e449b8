//  frontend/herd_frontend.c: the dispatch: what each client line means,
//  and the group commit before any AT leaves.

#include "frontend/herd_frontend_layer.h"
#include <sys/socket.h>

//  An AT reply queued in this pass, until the node commits the pass: if
//  the commit fails, it becomes "? <line>" before anything is written
typedef struct {
    herd_connection_t *connection;
    size_t offset;              //  In the client's queued output
    size_t size;                //  The AT line and its \n
    const char *line;           //  The IAMAT as received (in its input buffer)
    size_t line_size;
} s_ack_t;

struct _herd_frontend_t {
    herd_frontend_node_t node;  //  The node's calls
    char *server;               //  Our name, first field of AT replies
    herd_listener_t *listener;  //  Takes connections (owned)
    int plain_socket;           //  The listener's plain port, -1 if off
    int tls_socket;             //  ... and its TLS port, -1 if none
    herd_tls_t *tls;            //  The TLS port's context, NULL if none (owned)
    herd_connections_t *connections;    //  Holds them (owned)
    size_t max_line;            //  Longest command line
    char *scratch;              //  Where AT lines are built
    size_t scratch_capacity;
    s_ack_t *acks;              //  AT replies awaiting this pass's commit
    size_t ack_count;
    size_t ack_capacity;
    uint64_t iamats;            //  Counters for STATS
    uint64_t whatsats;
    uint64_t forgets;
    uint64_t bad_lines;
    uint64_t not_granted;       //  Lines naming an id the certificate does not grant
    herd_ratelimit_t *log;      //  What clients make us log, limited per address (owned)
    uint64_t uncommitted;       //  AT replies turned to "?" by a failed commit
    uint64_t refused_full;      //  IAMATs answered "?": store full
    uint64_t refused_future;    //  ... client time too far ahead
    uint64_t refused_journal;   //  ... journal cannot write
    uint64_t refused_expired;   //  ... client time older than herd/client_ttl
};

static void
s_log_traffic (herd_frontend_t *self, herd_connection_t *connection, const char *direction,
               const char *data, size_t size, const char *note)
{
    if (self->node.traffic)
        herd_traffic_client (self->node.traffic, herd_connection_id (connection), direction, data, size,
                             NULL, NULL, 0, note);
}

//  "? <the line as received>"
static void
s_reply_invalid (herd_frontend_t *self, herd_connection_t *connection, const char *line, size_t size,
                 const char *reason)
{
    if (self->node.traffic) {
        char note [128];
        snprintf (note, sizeof note, "   (%s)", reason);
        herd_traffic_client (self->node.traffic, herd_connection_id (connection), "> ?", line, size, NULL, NULL, 0, note);
    }
    herd_connection_append (connection, "? ", 2);
    herd_connection_append (connection, line, size);
    herd_connection_append (connection, "\n", 1);
}

//  --------------------------------------------------------------------------
//  Commands

//  An IAMAT, or a FORGET: its AT or GONE line, built once, offered to the
//  node's funnel, and held as this pass's reply until the commit
static void
s_handle_update (herd_frontend_t *self, herd_connection_t *connection, herd_command_t *command,
                 const char *line, size_t line_size)
{
    herd_stream_t *stream = herd_connection_stream (connection);
    herd_at_t at;
    int size = command->kind == HERD_LINE_FORGET
             ? herd_protocol_format_gone (self->scratch, self->scratch_capacity, self->server,
                                          herd_stream_receipt (stream), command->client,
                                          command->time, &at)
             : herd_protocol_format_at (self->scratch, self->scratch_capacity, self->server,
                                        herd_stream_receipt (stream), command, &at);
    assert (size > 0);              //  scratch fits max_line and our name
    int stored = self->node.accept (&at, self->node.arg);
    //  AT is a promise (docs/PROTOCOL.md): where it cannot be kept, "?"
    if (stored == HERD_STORE_FULL) {
        self->refused_full++;
        s_reply_invalid (self, connection, line, line_size, "store full (herd/max_stored): not stored");
        return;
    }
    if (stored == HERD_STORE_FUTURE) {
        self->refused_future++;
        s_reply_invalid (self, connection, line, line_size, "client time too far ahead (herd/max_future)");
        return;
    }
    if (stored == HERD_STORE_UNWRITABLE) {
        self->refused_journal++;
        s_reply_invalid (self, connection, line, line_size, "the journal cannot write: not stored");
        return;
    }
    if (stored == HERD_STORE_EXPIRED) {
        self->refused_expired++;
        s_reply_invalid (self, connection, line, line_size, "client time older than herd/client_ttl: not stored");
        return;
    }
    if (self->ack_count == self->ack_capacity) {
        self->ack_capacity = self->ack_capacity? self->ack_capacity * 2: 256;
        self->acks = (s_ack_t *) realloc (self->acks, self->ack_capacity * sizeof (s_ack_t));
        assert (self->acks);
    }
    s_ack_t ack = { connection, herd_stream_pending (stream), size + 1, line, line_size };
    self->acks [self->ack_count++] = ack;
    herd_connection_append (connection, self->scratch, size);
    herd_connection_append (connection, "\n", 1);
    //  The IAMAT and its reply on one line
    if (self->node.traffic)
        herd_traffic_client (self->node.traffic, herd_connection_id (connection), "<", line, line_size, ">",
                             self->scratch, size,
                             stored == HERD_STORE_STORED? NULL
                             : command->kind == HERD_LINE_FORGET? "   (a newer update is held: it stays)"
                             : "   (not newer than the stored one: kept that)");
}

//  Group commit: the node makes what this pass accepted durable (one
//  journal write, one fdatasync under "always", for all clients) before
//  any reply leaves. If it cannot, this pass's AT replies become "?":
//  AT is a promise the server could not keep. Latest first, so the
//  offsets of earlier replies in the same output stay true.
static void
s_commit (void *arg)
{
    herd_frontend_t *self = (herd_frontend_t *) arg;
    if (self->node.commit (self->node.arg) == -1) {
        for (size_t index = self->ack_count; index-- > 0;) {
            s_ack_t *ack = &self->acks [index];
            size_t size = ack->line_size + 3;
            char *reply = (char *) malloc (size);
            assert (reply);
            memcpy (reply, "? ", 2);
            memcpy (reply + 2, ack->line, ack->line_size);
            reply [size - 1] = '\n';
            if (herd_stream_replace (herd_connection_stream (ack->connection), ack->offset, ack->size,
                                         reply, size) == 0) {
                self->uncommitted++;
                s_log_traffic (self, ack->connection, ">", reply, size - 1,
                               "   (the journal failed: replaces the AT above)");
            }
            freen (reply);
        }
    }
    self->ack_count = 0;
    //  The pass's traffic lines, replies as sent included, in one write
    //  before any reply leaves
    if (self->node.traffic)
        herd_traffic_flush (self->node.traffic);
}

//  A WHATSAT's reply: its AT line, the places JSON, an empty line
static void
s_write_whatsat (herd_frontend_t *self, herd_connection_t *connection, const char *head, size_t head_size,
                 const char *json, size_t json_size)
{
    herd_connection_append (connection, head, head_size);
    herd_connection_append (connection, "\n", 1);
    herd_connection_append (connection, json, json_size);
    herd_connection_append (connection, "\n\n", 2);
    if (self->node.traffic) {
        char suffix [64];
        snprintf (suffix, sizeof suffix, " + places JSON (%zu bytes)", json_size);
        s_log_traffic (self, connection, ">", head, head_size, suffix);
    }
}

//  Ends a WHATSAT whose answer came from the places broker, with the AT
//  line held since it was asked
static void
s_reply_whatsat (herd_frontend_t *self, herd_connection_t *connection, const char *json, size_t json_size)
{
    char *head = herd_connection_release (connection);
    s_write_whatsat (self, connection, head, strlen (head), json, json_size);
    freen (head);
}

static void
s_handle_whatsat (herd_frontend_t *self, herd_connection_t *connection, herd_command_t *command,
                  const char *line, size_t size)
{
    char id [HERD_CLIENT_ID_MAX + 1];
    memcpy (id, command->client.start, command->client.size);
    id [command->client.size] = 0;
    herd_at_t at;
    const char *stored = self->node.lookup (id, &at, self->node.arg);
    if (!stored) {
        s_reply_invalid (self, connection, line, size, "unknown client");
        return;
    }
    herd_query_t query = { 0, 0, command->radius_km * 1000, (uint32_t) command->max_results };
    herd_protocol_at_position (&at, &query.latitude, &query.longitude);
    //  The offline provider answers now, in this pass
    size_t json_size;
    const char *json = herd_places_asker_answer_now (self->node.places, &query, &json_size);
    if (json) {
        s_write_whatsat (self, connection, stored, strlen (stored), json, json_size);
        return;
    }
    //  The reply carries the line as it is now, whatever comes later
    herd_connection_hold (connection, strdup (stored));
    if (herd_places_asker_query (self->node.places, herd_connection_tag (connection), &query) == -1) {
        herd_ratelimit_log (self->log, herd_connection_host (connection), LOG_WARNING,
                            "client %" PRIu64 ": places broker not taking queries", herd_connection_id (connection));
        //  An answer the loop makes itself, in the places reply's shape
        json_t *response = herd_nearby_error ("places: broker is not taking queries");
        char *text = herd_nearby_text (response, HERD_RESULTS_MAX);
        json_decref (response);
        s_reply_whatsat (self, connection, text, strlen (text));
        freen (text);
    }
}

//  True if the client's certificate grants the id the command names; if
//  not, answers "?" (docs/PROTOCOL.md section 4) and logs it once
static bool
s_granted (herd_frontend_t *self, herd_connection_t *connection, herd_command_t *command,
           const char *line, size_t size)
{
    herd_grants_t *grants = herd_connection_grants (connection);
    if (!grants || herd_grants_allow (grants, command->client.start, command->client.size))
        return true;
    self->not_granted++;
    if (herd_connection_first_refusal (connection))
        herd_ratelimit_log (self->log, herd_connection_host (connection), LOG_WARNING,
                            "client %" PRIu64 ": named %.*s, which its certificate does not grant "
                            "(it grants %s); answered ? (logged once a connection)",
                            herd_connection_id (connection), (int) command->client.size, command->client.start,
                            herd_grants_text (grants));
    s_reply_invalid (self, connection, line, size, "client id not granted by the certificate");
    return false;
}

static void
s_handle_line (herd_frontend_t *self, herd_connection_t *connection, const char *line, size_t size)
{
    //  line comes without its line ending (\n or \r\n): it is what "?" echoes
    herd_command_t command;
    herd_protocol_parse (line, size, &command);
    if (command.kind == HERD_LINE_EMPTY)
        return;
    if (command.kind != HERD_LINE_INVALID && !s_granted (self, connection, &command, line, size))
        return;
    //  An IAMAT is logged with its reply, a bad line with its "?"
    if (command.kind == HERD_LINE_WHATSAT)
        s_log_traffic (self, connection, "<", line, size, NULL);
    if (command.kind == HERD_LINE_IAMAT) {
        self->iamats++;
        s_handle_update (self, connection, &command, line, size);
    }
    else
    if (command.kind == HERD_LINE_FORGET) {
        self->forgets++;
        s_handle_update (self, connection, &command, line, size);
    }
    else
    if (command.kind == HERD_LINE_WHATSAT) {
        self->whatsats++;
        s_handle_whatsat (self, connection, &command, line, size);
    }
    else {
        self->bad_lines++;
        s_reply_invalid (self, connection, line, size, command.reason);
    }
}

//  Runs every whole line the client holds, in order, stopping at a
//  WHATSAT until its answer comes (replies keep the commands' order)
static void
s_handle_input (herd_connection_t *connection, void *arg)
{
    herd_frontend_t *self = (herd_frontend_t *) arg;
    const char *line;
    size_t size;
    int found;
    while ((found = herd_connection_next_line (connection, &line, &size)) != HERD_STREAM_NONE) {
        if (found == HERD_STREAM_LINE)
            s_handle_line (self, connection, line, size);
        else {
            herd_ratelimit_log (self->log, herd_connection_host (connection), LOG_WARNING,
                                "client %" PRIu64 ": line longer than %zu bytes; answering and closing",
                                herd_connection_id (connection), self->max_line);
            s_reply_invalid (self, connection, line, size, "line too long");
            herd_connection_close_when_drained (connection, "line too long");
        }
    }
}

//  The places broker answers a WHATSAT: to the client that asked, if it
//  is still there (a client that left, and whoever has its descriptor
//  now, get nothing)
static void
s_handle_answer (uint64_t request, const char *json, size_t size, void *arg)
{
    herd_frontend_t *self = (herd_frontend_t *) arg;
    herd_connection_t *connection = herd_connections_find (self->connections, request);
    if (!connection || !herd_connection_held (connection))
        return;
    s_reply_whatsat (self, connection, json, size);
    //  Lines that came behind the WHATSAT run now
    s_handle_input (connection, self);
    s_commit (self);
    herd_connections_settle (self->connections, connection);
}

//  --------------------------------------------------------------------------
//  Between the listener and the client table

//  tag: the TLS context on the TLS port, NULL on the plain one
static int
s_admit (int fd, const char *host, const char *address, void *tag, void *arg)
{
    herd_frontend_t *self = (herd_frontend_t *) arg;
    return herd_connections_add (self->connections, fd, host, address, (herd_tls_t *) tag);
}

static void
s_client_closed (herd_connection_t *connection, void *arg)
{
    herd_frontend_t *self = (herd_frontend_t *) arg;
    if (self->listener)
        herd_listener_release (self->listener, herd_connection_host (connection));
}

//  --------------------------------------------------------------------------
//  Start and stop

//  The client table's limits, as the config says
static void
s_limits (herd_config_t *config, herd_connections_limits_t *limits)
{
    limits->max_line = herd_config_number (config, "herd/max_line");
    limits->max_pending = herd_config_number (config, "herd/max_pending");
    limits->max_clients = herd_config_number (config, "herd/max_clients");
    limits->max_output_total = herd_config_number (config, "herd/max_output_total");
    limits->idle_timeout = herd_config_number (config, "herd/idle_timeout") * 1000;
    limits->first_line_timeout = herd_config_number (config, "herd/first_line_timeout") * 1000;
}

void
herd_frontend_set_limits (herd_frontend_t *self, herd_config_t *config)
{
    assert (self && config);
    herd_connections_limits_t limits;
    s_limits (config, &limits);
    herd_connections_set_limits (self->connections, &limits);
    herd_listener_set_max_per_address (self->listener, herd_config_number (config, "herd/max_per_address"));
}

void
herd_frontend_set_traffic (herd_frontend_t *self, herd_traffic_t *traffic)
{
    assert (self);
    self->node.traffic = traffic;
}

herd_frontend_t *
herd_frontend_new (herd_config_t *config, const char *server, zloop_t *loop,
                   const herd_frontend_node_t *node, char **error_p)
{
    assert (config && server && loop && node && node->places && error_p);
    herd_frontend_t *self = (herd_frontend_t *) zmalloc (sizeof (herd_frontend_t));
    self->node = *node;
    self->server = strdup (server);
    self->max_line = herd_config_number (config, "herd/max_line");
    self->scratch_capacity = self->max_line + strlen (self->server) + 64;
    self->scratch = (char *) malloc (self->scratch_capacity);
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    assert (self->scratch);
    herd_connections_limits_t limits;
    s_limits (config, &limits);
    herd_connections_handler_t handler = { s_handle_input, s_commit, s_client_closed, self };
    self->connections = herd_connections_new (loop, &limits, &handler);
    self->listener = herd_listener_new (loop, herd_config_number (config, "herd/max_per_address"),
                                        s_admit, self);
    self->plain_socket = self->tls_socket = -1;
    const char *bind = herd_config_client_bind (config, server);
    const char *tls_bind = herd_config_server_endpoint (config, server, "client_tls");
    //  The TLS port first (OpenSSL's first context can take a while to
    //  make), the plain port last: whoever sees the plain port take
    //  connections finds the TLS port taking them too
    if (tls_bind) {
        self->tls = herd_tls_new (config, server, error_p);
        char *setting = zsys_sprintf ("servers/%s/client_tls in %s", server, herd_config_filename (config));
        if (self->tls)
            self->tls_socket = herd_listener_bind (self->listener, tls_bind, setting, self->tls, error_p);
        freen (setting);
    }
    if (bind && (!tls_bind || self->tls_socket != -1)) {
        char *setting = zsys_sprintf ("servers/%s/client in %s", server, herd_config_filename (config));
        self->plain_socket = herd_listener_bind (self->listener, bind, setting, NULL, error_p);
        freen (setting);
    }
    if ((bind && self->plain_socket == -1) || (tls_bind && self->tls_socket == -1)) {
        herd_frontend_destroy (&self);
        return NULL;
    }
    herd_places_asker_on_answer (self->node.places, s_handle_answer, self);
    if (bind)
        zsys_info ("frontend: %s listening for clients on %s (port %d)%s", server, bind,
                   herd_frontend_port (self), tls_bind? "": "; no TLS port (servers/NAME/client_tls)");
    else
        zsys_info ("frontend: %s: plain client port off (client = off): clients over TLS only", server);
    if (tls_bind)
        zsys_info ("frontend: %s listening for clients over TLS on %s (port %d): %s", server, tls_bind,
                   herd_frontend_tls_port (self), herd_tls_describe (self->tls));
    return self;
}

void
herd_frontend_destroy (herd_frontend_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_frontend_t *self = *self_p;
        if (self->listener)
            herd_places_asker_on_answer (self->node.places, NULL, NULL);
        //  The clients first: each one closing tells the listener
        herd_connections_destroy (&self->connections);
        herd_listener_destroy (&self->listener);
        herd_tls_destroy (&self->tls);
        freen (self->acks);
        freen (self->scratch);
        herd_ratelimit_destroy (&self->log);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_frontend_port (herd_frontend_t *self)
{
    assert (self);
    return self->listener? herd_listener_port (self->listener, self->plain_socket): 0;
}

int
herd_frontend_tls_port (herd_frontend_t *self)
{
    assert (self);
    return self->listener? herd_listener_port (self->listener, self->tls_socket): 0;
}

int
herd_frontend_reload (herd_frontend_t *self, char **error_p)
{
    assert (self && error_p);
    if (!self->tls)
        return 0;
    if (herd_tls_reload (self->tls, error_p))
        return -1;
    zsys_info ("frontend: TLS certificates reloaded: %s", herd_tls_describe (self->tls));
    return 0;
}

void
herd_frontend_stats (herd_frontend_t *self, json_t *stats)
{
    assert (self && stats);
    herd_connections_stats (self->connections, stats);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_REFUSED_PER_ADDRESS,
                       herd_listener_refused_per_address (self->listener));
    herd_counters_put_keyed (stats, HERD_COUNTER_COMMANDS, "IAMAT", self->iamats);
    herd_counters_put_keyed (stats, HERD_COUNTER_COMMANDS, "WHATSAT", self->whatsats);
    herd_counters_put_keyed (stats, HERD_COUNTER_COMMANDS, "FORGET", self->forgets);
    herd_counters_put (stats, HERD_COUNTER_BAD_LINES, self->bad_lines);
    herd_counters_put (stats, HERD_COUNTER_NOT_GRANTED, self->not_granted);
    herd_counters_put (stats, HERD_COUNTER_ACKS_WITHDRAWN, self->uncommitted);
    herd_counters_put_keyed (stats, HERD_COUNTER_IAMATS_REFUSED, "store_full", self->refused_full);
    herd_counters_put_keyed (stats, HERD_COUNTER_IAMATS_REFUSED, "future", self->refused_future);
    herd_counters_put_keyed (stats, HERD_COUNTER_IAMATS_REFUSED, "journal", self->refused_journal);
    herd_counters_put_keyed (stats, HERD_COUNTER_IAMATS_REFUSED, "expired", self->refused_expired);
}

json_t *
herd_frontend_connection_list (herd_frontend_t *self)
{
    return self? herd_connections_list (self->connections): json_array ();
}

size_t
herd_frontend_connections (herd_frontend_t *self)
{
    assert (self);
    return herd_connections_count (self->connections);
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
s_test_lookup (const char *connection, herd_at_t *at, void *arg)
{
    (void) arg;
    return herd_store_lookup (s_store, connection, at);
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

//  The next query the frontend sent the stand-in broker; *routing_p is
//  who asked
static herd_places_msg_t
s_test_places_query (zloop_t *loop, zsock_t *places, zframe_t **routing_p)
{
    herd_places_msg_t query = { .kind = HERD_PLACES_MSG_INVALID, .id = 0 };
    for (int round = 0; round < 200 && query.kind == HERD_PLACES_MSG_INVALID; round++) {
        herd_loop_run_for (loop, 10);
        if (zsock_events (places) & ZMQ_POLLIN) {
            zframe_t *frame = NULL;
            assert (herd_places_msg_recv (places, routing_p, &frame, &query) == HERD_PLACES_MSG_QUERY);
            zframe_destroy (&frame);
        }
    }
    assert (query.kind == HERD_PLACES_MSG_QUERY);
    return query;
}

//  Answers a query, under its request id
static void
s_test_places_answer (const herd_places_msg_t *query, zframe_t **routing_p, zsock_t *places)
{
    const char *json = "{\"results\": [], \"status\": \"ZERO_RESULTS\"}";
    herd_places_msg_t answer = { .kind = HERD_PLACES_MSG_ANSWER, .id = query->id,
                                 .text = json, .text_size = strlen (json) };
    assert (herd_places_msg_send (places, *routing_p, &answer) == 0);
    zframe_destroy (routing_p);
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
    herd_places_asker_t *places_client = herd_places_asker_new (loop, "F", 100);
    herd_frontend_node_t node = { s_test_accept, s_test_lookup, s_test_commit, NULL, traffic, places_client };
    herd_frontend_t *frontend = herd_frontend_new (config, "F", loop, &node, &error);
    assert (frontend);
    int port = herd_frontend_port (frontend);
    assert (port > 0);

    int fd = herd_loop_connect (port);
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
    zframe_t *routing = NULL;
    herd_places_msg_t query_msg = s_test_places_query (loop, places, &routing);
    herd_query_t query = query_msg.query;
    assert (query.latitude == 34.068930 && query.longitude == -118.445127);
    assert (query.radius_m == 10000 && query.max_results == 5);
    herd_loop_run_for (loop, 20);
    assert (read (fd, buffer, sizeof buffer) == -1);      //  Nothing yet
    s_test_places_answer (&query_msg, &routing, places);
    s_test_exchange (loop, fd, "", "? WHATSAT nobody 1 1\n", buffer, sizeof buffer);
    assert (!strncmp (buffer, "AT F +", 6));
    char *json = strchr (buffer, '{');
    assert (json && streq (json, "{\"results\": [], \"status\": \"ZERO_RESULTS\"}\n\n? WHATSAT nobody 1 1\n"));
    //  A client that leaves before its answer: the answer is dropped, and
    //  never reaches whoever has its descriptor now
    int leaver = herd_loop_connect (port);
    assert (write (leaver, "WHATSAT kiwi 1 1\n", 17) == 17);     //  17 bytes
    query_msg = s_test_places_query (loop, places, &routing);
    //  It resets the connection (a plain close is a half-close, which a
    //  client may do and still wait for its answer)
    struct linger reset = { 1, 0 };
    setsockopt (leaver, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close (leaver);
    for (int round = 0; round < 100 && herd_frontend_connections (frontend) > 1; round++)
        herd_loop_run_for (loop, 10);
    assert (herd_frontend_connections (frontend) == 1);
    int heir = herd_loop_connect (port);
    fcntl (heir, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, heir, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, "? HELLO\n"));
    s_test_places_answer (&query_msg, &routing, places);
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
    //  closing the oldest that sent no command yet (second), and is served
    int second = herd_loop_connect (port);
    for (int round = 0; round < 100 && herd_frontend_connections (frontend) < 2; round++)
        herd_loop_run_for (loop, 10);
    assert (herd_frontend_connections (frontend) == 2);
    int third = herd_loop_connect (port);
    fcntl (third, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, third, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, "? HELLO\n"));
    fcntl (second, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, second, "", "never", buffer, sizeof buffer);
    assert (read (second, buffer, sizeof buffer) == 0);     //  Closed to make room
    //  Both that remain have sent a command: a fourth makes room by
    //  closing the idlest (third, since fd spoke after it)
    s_test_exchange (loop, fd, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, "? HELLO\n"));
    int fourth = herd_loop_connect (port);
    fcntl (fourth, F_SETFL, O_NONBLOCK);
    s_test_exchange (loop, fourth, "HELLO\n", "\n", buffer, sizeof buffer);
    assert (streq (buffer, "? HELLO\n"));
    s_test_exchange (loop, third, "", "never", buffer, sizeof buffer);
    assert (read (third, buffer, sizeof buffer) == 0);      //  Closed to make room
    assert (herd_frontend_connections (frontend) == 2);
    json_t *stats = json_object ();
    herd_frontend_stats (frontend, stats);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_REFUSED, NULL) == 0);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_EVICTED, NULL) == 2);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_TOTAL, NULL) == 6);
    assert (herd_counters_value (stats, HERD_COUNTER_COMMANDS, "WHATSAT") == 3);
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
    herd_places_asker_destroy (&places_client);
    herd_traffic_destroy (&traffic);
    zloop_destroy (&loop);
    herd_store_destroy (&s_store);
    zsock_destroy (&places);
    herd_config_destroy (&config);
    printf ("OK\n");
}
