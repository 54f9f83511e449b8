//  node/herd_http.c: /metrics, /healthz and /readyz over libmicrohttpd.

#include "herd_classes.h"
#include <microhttpd.h>
#include <netdb.h>

//  What no client can hold, so that a probe always gets in: slow or idle
//  connections from a few addresses cannot fill the endpoint, and a
//  connection that sends a byte now and then still ends (as a web server
//  bounds a request header's whole time, not just its silences)
#define S_ASK_TIMEOUT   2000        //  msecs the node has to answer
#define S_CONNECTIONS   8192        //  HTTP connections at once (epoll: no FD_SETSIZE)
#define S_MEMORY        8192        //  Bytes for one connection's request (GETs are small)
#define S_PER_ADDRESS   32          //  Of which from one address
#define S_IDLE_SECONDS  5           //  An HTTP connection idle this long is closed
#define S_TOTAL_SECONDS 10          //  And one open this long, however busy

//  One connection, from its start (its socket context)
typedef struct {
    int fd;
    int64_t started;            //  zclock_mono
    char address [INET6_ADDRSTRLEN];
} s_connection_t;

struct _herd_http_t {
    char *server;               //  Our server's name, the "server" label
    char *admin;                //  The node's inproc admin endpoint
    struct MHD_Daemon *daemon;  //  libmicrohttpd, with its own thread
    herd_admin_t *asker;        //  To the node: only the daemon's thread uses it
    zlistx_t *connections;      //  s_connection_t, oldest first: only the daemon's thread uses it
    herd_tally_t *per_address;  //  Connections open from each address: the daemon's thread's
};

//  The address of a socket address, as text
static void
s_address_text (const struct sockaddr *address, char *text, size_t size)
{
    snprintf (text, size, "?");
    getnameinfo (address, address->sa_family == AF_INET6? sizeof (struct sockaddr_in6)
                                                         : sizeof (struct sockaddr_in),
                 text, (socklen_t) size, NULL, 0, NI_NUMERICHOST);
}

//  Admits a connection unless its address holds S_PER_ADDRESS already (our
//  own count: libmicrohttpd 0.9.75's per-IP limit stops accepting under a
//  burst of refusals, and then nobody gets in)
static enum MHD_Result
s_admit (void *arg, const struct sockaddr *address, socklen_t size)
{
    (void) size;
    herd_http_t *self = (herd_http_t *) arg;
    char text [INET6_ADDRSTRLEN];
    s_address_text (address, text, sizeof text);
    return herd_tally_count (self->per_address, text) >= S_PER_ADDRESS? MHD_NO: MHD_YES;
}

//  --------------------------------------------------------------------------
//  The metrics: each a JSON path in STATS (or STATE), a name, a type, help

//  The one place a STATS counter becomes a metric: every number (or
//  object of numbers, one sample per key, labelled) in STATS has a row, and
//  each metric's HELP names its STATS path, so test_http can check that no
//  counter is left out
typedef struct {
    const char *path;           //  "journal/syncs": keys from the top
    const char *name;
    const char *type;           //  "counter" or "gauge"
    const char *help;
    const char *label;          //  An object of numbers: its keys' label, else NULL
} s_metric_t;

static const s_metric_t s_metrics [] = {
    { "uptime_s", "herd_uptime_seconds", "gauge", "Seconds since the server started", NULL },
    { "connections_open", "herd_connections_open", "gauge", "Client connections open now", NULL },
    { "connections_total", "herd_connections_total", "counter", "Client connections accepted", NULL },
    { "connections_refused", "herd_connections_refused_total", "counter",
      "Connections refused at herd/max_clients", NULL },
    { "connections_refused_per_address", "herd_connections_refused_per_address_total", "counter",
      "Connections refused at herd/max_per_address", NULL },
    { "connections_idle_closed", "herd_connections_idle_closed_total", "counter",
      "Connections closed at herd/idle_timeout or herd/first_line_timeout", NULL },
    { "connections_evicted", "herd_connections_evicted_total", "counter",
      "Connections with no command yet closed to make room at herd/max_clients", NULL },
    { "clients_dropped_output_total", "herd_connections_dropped_output_total", "counter",
      "Connections dropped at herd/max_output_total", NULL },
    { "output_bytes", "herd_output_bytes", "gauge", "Reply bytes queued for all clients", NULL },
    { "bad_lines", "herd_bad_lines_total", "counter", "Client lines answered ?", NULL },
    { "acks_withdrawn", "herd_acks_withdrawn_total", "counter",
      "AT replies turned to ? because the journal could not write", NULL },
    { "clients_stored", "herd_clients_stored", "gauge", "Clients in the store", NULL },
    { "store/full", "herd_store_full", "gauge",
      "1 once the store holds herd/max_stored clients: it keeps the newest, evicting the oldest", NULL },
    { "store/evicted", "herd_store_evicted_total", "counter", "Clients evicted from a full store by newer ones", NULL },
    { "store/refused_older", "herd_store_refused_older_total", "counter",
      "New clients a full store refused, being older than every client it holds", NULL },
    { "updates/in", "herd_updates_in_total", "counter", "Updates stored from neighbours' streams", NULL },
    { "updates/batches_out", "herd_bus_batches_out_total", "counter", "Batches (bus messages) sent to neighbours", NULL },
    { "feed/subscriptions", "herd_feed_subscriptions", "gauge", "Prefixes subscribed on the update feed now", NULL },
    { "feed/sent", "herd_feed_sent_total", "counter", "Updates sent on the update feed", NULL },
    { "feed/rebuilt", "herd_feed_rebuilt_total", "counter",
      "Times the feed's subscriptions outgrew bus/feed_max_subscriptions and every monitor was dropped", NULL },
    { "bus/rebuilt", "herd_bus_rebuilt_total", "counter",
      "Times the bus's subscriptions outgrew their bound and every neighbour was dropped", NULL },
    { "updates/from_catch_up", "herd_updates_caught_up_total", "counter",
      "Updates stored from neighbours' snapshots", NULL },
    { "updates/out", "herd_updates_out_total", "counter", "Updates published on the bus", NULL },
    { "updates/received", "herd_updates_received_total", "counter",
      "Updates received from neighbours' streams, newer or not", NULL },
    { "updates/dropped_future", "herd_updates_dropped_future_total", "counter",
      "Neighbours' updates dropped for a client time too far ahead", NULL },
    { "handshakes_refused", "herd_handshakes_refused_total", "counter",
      "ZeroMQ handshakes refused (keys not admitted), by link", "domain" },
    { "commands", "herd_commands_total", "counter", "Client commands by kind", "kind" },
    { "iamats_refused", "herd_iamats_refused_total", "counter",
      "IAMATs answered ? by reason: store_full, future (client time), journal (cannot write)", "reason" },
    { "journal/rewriting", "herd_journal_rewriting", "gauge", "1 while a rewrite of the journal runs", NULL },
    { "snapshots/replaced", "herd_snapshots_replaced_total", "counter",
      "Snapshots ended by a newer SYNC from the same server", NULL },
    { "journal/bytes", "herd_journal_bytes", "gauge", "Bytes in the journal file", NULL },
    { "journal/syncs", "herd_journal_syncs_total", "counter", "fdatasync calls on the journal", NULL },
    { "journal/sync_usecs_max", "herd_journal_sync_seconds_max", "gauge",
      "The slowest background fdatasync seen", NULL },
    { "journal/failures", "herd_journal_failures_total", "counter",
      "Times the journal could not write", NULL },
    { "snapshots/going_out", "herd_snapshots_going_out", "gauge", "Snapshots being sent to neighbours", NULL },
    { "snapshots/refused", "herd_snapshots_refused_total", "counter",
      "SYNC requests refused at the bound on snapshots", NULL },
    { "places/requests", "herd_places_requests_total", "counter", "WHATSAT places requests", NULL },
    { "places/provider_errors", "herd_places_provider_errors_total", "counter",
      "Places requests the provider failed", NULL },
    { "places/cache_hits", "herd_places_cache_hits_total", "counter", "Places answers from the cache", NULL },
    { "places/cache_misses", "herd_places_cache_misses_total", "counter", "Places cache misses", NULL },
    { "places/cache_evictions", "herd_places_cache_evictions_total", "counter", "Places cache evictions", NULL },
    { "places/cache_entries", "herd_places_cache_entries", "gauge", "Places answers cached", NULL },
};

static json_t *
s_at_path (json_t *root, const char *path)
{
    char *copy = strdup (path);
    json_t *node = root;
    char *saveptr = NULL;
    for (char *key = strtok_r (copy, "/", &saveptr); key && node; key = strtok_r (NULL, "/", &saveptr))
        node = json_object_get (node, key);
    freen (copy);
    return node;
}

//  path: where the value comes from, "STATS journal/syncs", for the HELP
static void
s_header (zchunk_t *text, const char *name, const char *type, const char *help, const char *path)
{
    char *lines = zsys_sprintf ("# HELP %s %s (%s)\n# TYPE %s %s\n", name, help, path, name, type);
    zchunk_extend (text, lines, strlen (lines));
    freen (lines);
}

static void
s_sample (zchunk_t *text, const char *name, const char *labels, double value)
{
    char *line = zsys_sprintf ("%s{%s} %.15g\n", name, labels, value);
    zchunk_extend (text, line, strlen (line));
    freen (line);
}

//  Per neighbour values from a STATE link; false if there is none to give
typedef bool (s_link_value_fn) (json_t *link, double *value);

static bool
s_link_up (json_t *link, double *value)
{
    *value = json_is_true (json_object_get (link, "connected")) && !json_is_true (json_object_get (link, "silent"));
    return true;
}

static bool
s_link_heard (json_t *link, double *value)
{
    json_t *ago = json_object_get (link, "heard_ms_ago");
    *value = json_is_integer (ago)? json_integer_value (ago) / 1000.0: 0;
    return json_is_integer (ago);           //  Never heard: no sample
}

static bool
s_link_syncing (json_t *link, double *value)
{
    const char *peer_state = json_string_value (json_object_get (link, "state"));
    *value = peer_state && (streq (peer_state, "syncing") || streq (peer_state, "again"));
    return true;
}

//  A gauge family with one sample per neighbour
static void
s_link_family (zchunk_t *text, const char *labels, json_t *links, const char *name, const char *help,
               s_link_value_fn *value_of)
{
    s_header (text, name, "gauge", help, "STATE links");
    const char *neighbour;
    json_t *link;
    json_object_foreach (links, neighbour, link) {
        double value;
        if (value_of (link, &value)) {
            char *link_labels = zsys_sprintf ("%s,neighbour=\"%s\"", labels, neighbour);
            s_sample (text, name, link_labels, value);
            freen (link_labels);
        }
    }
}

char *
herd_http_metrics (const char *server, json_t *stats, json_t *state)
{
    assert (server);
    zchunk_t *text = zchunk_new (NULL, 8192);
    char *labels = zsys_sprintf ("server=\"%s\"", server);
    for (size_t index = 0; index < sizeof s_metrics / sizeof s_metrics [0]; index++) {
        const s_metric_t *metric = &s_metrics [index];
        json_t *value = stats? s_at_path (stats, metric->path): NULL;
        char *path = zsys_sprintf ("STATS %s", metric->path);
        if (metric->label && json_is_object (value)) {
            s_header (text, metric->name, metric->type, metric->help, path);
            const char *key;
            json_t *count;
            json_object_foreach (value, key, count) {
                char *keyed = zsys_sprintf ("%s,%s=\"%s\"", labels, metric->label, key);
                s_sample (text, metric->name, keyed, json_number_value (count));
                freen (keyed);
            }
        }
        else
        if (json_is_number (value) || json_is_boolean (value)) {
            s_header (text, metric->name, metric->type, metric->help, path);
            double number = json_is_boolean (value)? json_is_true (value): json_number_value (value);
            if (strstr (metric->name, "_seconds"))
                number /= 1e6;          //  From microseconds
            s_sample (text, metric->name, labels, number);
        }
        freen (path);
    }
    //  The provider's answer times, as a Prometheus histogram in seconds
    json_t *latency = stats? json_object_get (json_object_get (stats, "places"), "provider_latency"): NULL;
    json_t *bounds = json_object_get (latency, "le_ms"), *counts = json_object_get (latency, "counts");
    if (json_is_array (bounds) && json_is_array (counts) && json_array_size (bounds) == json_array_size (counts)) {
        const char *name = "herd_places_provider_seconds";
        s_header (text, name, "histogram", "How long the places provider took to answer",
                  "STATS places/provider_latency");
        for (size_t index = 0; index < json_array_size (bounds); index++) {
            char *bucket_labels = zsys_sprintf ("%s,le=\"%g\"", labels,
                                                json_number_value (json_array_get (bounds, index)) / 1000);
            s_sample (text, "herd_places_provider_seconds_bucket", bucket_labels,
                      json_number_value (json_array_get (counts, index)));
            freen (bucket_labels);
        }
        char *infinite = zsys_sprintf ("%s,le=\"+Inf\"", labels);
        double count = json_number_value (json_object_get (latency, "count"));
        s_sample (text, "herd_places_provider_seconds_bucket", infinite, count);
        freen (infinite);
        s_sample (text, "herd_places_provider_seconds_sum", labels,
                  json_number_value (json_object_get (latency, "sum_ms")) / 1000);
        s_sample (text, "herd_places_provider_seconds_count", labels, count);
    }
    json_t *journal = stats? json_object_get (stats, "journal"): NULL;
    if (journal) {
        s_header (text, "herd_journal_ok", "gauge", "1 while the journal writes, 0 while it cannot (or is off)",
                  "STATS journal/state");
        const char *journal_state = json_string_value (json_object_get (journal, "state"));
        s_sample (text, "herd_journal_ok", labels, journal_state && streq (journal_state, "ok"));
    }
    if (state) {
        s_header (text, "herd_caught_up", "gauge", "1 once a first catch-up is done (or there is nobody to ask)",
                  "STATE caught_up");
        s_sample (text, "herd_caught_up", labels, json_is_true (json_object_get (state, "caught_up")));
        json_t *links = json_object_get (state, "links");
        s_link_family (text, labels, links, "herd_link_up", "1 if the neighbour's bus is connected and heard",
                       s_link_up);
        s_link_family (text, labels, links, "herd_link_heard_seconds_ago",
                       "Seconds since the neighbour was last heard", s_link_heard);
        s_link_family (text, labels, links, "herd_link_syncing",
                       "1 while a catch-up from the neighbour is under way", s_link_syncing);
    }
    freen (labels);
    char *result = zchunk_strdup (text);
    zchunk_destroy (&text);
    return result;
}

//  --------------------------------------------------------------------------
//  Asking the node, from the daemon's thread

//  [request] -> JSON from the node, or NULL if it does not answer in time
static json_t *
s_ask (herd_http_t *self, const char *request)
{
    if (!self->asker)
        self->asker = herd_admin_new_endpoint (self->admin);
    json_t *json = herd_admin_ask (self->asker, request, S_ASK_TIMEOUT);
    return json;
}

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned int status, const char *type, char *body)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (body), body,
                                                                     MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static enum MHD_Result
s_answer (void *arg, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **context)
{
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    herd_http_t *self = (herd_http_t *) arg;
    //  libmicrohttpd calls twice per request: headers first, then to answer
    if (*context == NULL) {
        *context = self;
        return MHD_YES;
    }
    if (!streq (method, "GET") && !streq (method, "HEAD"))
        return s_respond (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", strdup ("GET only\n"));
    if (streq (url, "/metrics")) {
        json_t *stats = s_ask (self, "STATS");
        json_t *state = stats? s_ask (self, "STATE"): NULL;
        if (!stats || !state) {
            json_decref (stats);
            return s_respond (connection, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                              strdup ("the node did not answer\n"));
        }
        char *text = herd_http_metrics (self->server, stats, state);
        json_decref (stats);
        json_decref (state);
        return s_respond (connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
    }
    if (streq (url, "/healthz") || streq (url, "/readyz")) {
        json_t *state = s_ask (self, "STATE");
        bool alive = state != NULL;
        bool ready = alive && json_is_true (json_object_get (state, "caught_up"));
        json_decref (state);
        if (streq (url, "/healthz"))
            return s_respond (connection, alive? MHD_HTTP_OK: MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                              strdup (alive? "alive\n": "the node did not answer\n"));
        return s_respond (connection, ready? MHD_HTTP_OK: MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                          strdup (ready? "ready\n": alive? "not caught up yet\n": "the node did not answer\n"));
    }
    return s_respond (connection, MHD_HTTP_NOT_FOUND, "text/plain",
                      strdup ("not found; try /metrics, /healthz or /readyz\n"));
}

//  --------------------------------------------------------------------------
//  Start and stop

//  The daemon's thread tells us of each connection that starts or ends.
//  Each start is also when connections past S_TOTAL_SECONDS are ended:
//  shutdown(2) on their socket, which the daemon then sees close (all in
//  its own thread, so nothing is shared).
static void
s_notify_connection (void *arg, struct MHD_Connection *connection, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    herd_http_t *self = (herd_http_t *) arg;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        int64_t now = zclock_mono ();
        for (s_connection_t *old = (s_connection_t *) zlistx_first (self->connections);
             old && now - old->started > S_TOTAL_SECONDS * 1000;
             old = (s_connection_t *) zlistx_next (self->connections)) {
            if (old->fd != -1)
                shutdown (old->fd, SHUT_RDWR);
            old->fd = -1;           //  Once: it is on its way out
        }
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        s_connection_t *entry = (s_connection_t *) zmalloc (sizeof (s_connection_t));
        entry->fd = info? info->connect_fd: -1;
        entry->started = now;
        info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (info && info->client_addr)
            s_address_text (info->client_addr, entry->address, sizeof entry->address);
        herd_tally_add (self->per_address, entry->address);
        *socket_context = zlistx_add_end (self->connections, entry);
    }
    else
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        s_connection_t *entry = (s_connection_t *) zlistx_handle_item (*socket_context);
        herd_tally_remove (self->per_address, entry->address);
        zlistx_delete (self->connections, *socket_context);
        freen (entry);
        *socket_context = NULL;
    }
}

herd_http_t *
herd_http_new (const char *server, const char *bind, const char *admin, char **error_p)
{
    assert (server && bind && admin && error_p);
    struct addrinfo *address = NULL;
    char *error = NULL;
    if (herd_address_resolve (bind, true, &address, &error)) {
        *error_p = zsys_sprintf ("cannot serve HTTP on %s", error);
        freen (error);
        return NULL;
    }
    herd_http_t *self = (herd_http_t *) zmalloc (sizeof (herd_http_t));
    self->server = strdup (server);
    self->admin = strdup (admin);
    self->connections = zlistx_new ();
    self->per_address = herd_tally_new ();
    unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG
                       | (address->ai_family == AF_INET6? MHD_USE_IPv6: 0);
    self->daemon = MHD_start_daemon (flags, 0, s_admit, self, s_answer, self,
                                     MHD_OPTION_SOCK_ADDR, address->ai_addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) S_CONNECTIONS,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_IDLE_SECONDS,
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_MEMORY,
                                     MHD_OPTION_NOTIFY_CONNECTION, s_notify_connection, self,
                                     MHD_OPTION_END);
    freeaddrinfo (address);
    if (!self->daemon) {
        *error_p = zsys_sprintf ("cannot serve HTTP on %s: %s", bind, strerror (errno? errno: EADDRINUSE));
        herd_http_destroy (&self);
        return NULL;
    }
    zsys_info ("http: /metrics, /healthz and /readyz on %s (port %d)", bind, herd_http_port (self));
    return self;
}

void
herd_http_destroy (herd_http_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_http_t *self = *self_p;
        //  Stops the daemon's thread, and with it every use of asker
        if (self->daemon)
            MHD_stop_daemon (self->daemon);
        herd_admin_destroy (&self->asker);
        //  Stopping closes every connection, and each is taken out; any
        //  left is freed here
        if (self->connections) {
            for (void *entry = zlistx_first (self->connections); entry; entry = zlistx_next (self->connections))
                free (entry);
            zlistx_destroy (&self->connections);
        }
        herd_tally_destroy (&self->per_address);
        freen (self->admin);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_http_port (herd_http_t *self)
{
    assert (self);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info? info->port: 0;
}

//  --------------------------------------------------------------------------
//  Selftest: the Prometheus text for a node's answers

void
herd_http_test (bool verbose)
{
    printf (" * herd_http: ");
    if (verbose)
        printf ("\n");
    json_t *stats = json_loads (
        "{\"connections_open\": 3, \"commands\": {\"IAMAT\": 7, \"WHATSAT\": 2},"
        " \"iamats_refused\": {\"store_full\": 4, \"future\": 0, \"journal\": 1},"
        " \"journal\": {\"state\": \"ok\", \"syncs\": 5, \"sync_usecs_max\": 1500},"
        " \"places\": {\"requests\": 2, \"provider\": \"none\", \"provider_latency\":"
        " {\"le_ms\": [5, 50], \"counts\": [1, 2], \"sum_ms\": 30.5, \"count\": 3}}}", 0, NULL);
    json_t *state = json_loads (
        "{\"caught_up\": true, \"links\": {\"Bona\": {\"connected\": true, \"silent\": false,"
        " \"heard_ms_ago\": 250, \"state\": \"live\"}, \"Clark\": {\"connected\": false, \"silent\": true,"
        " \"heard_ms_ago\": null, \"state\": \"lost\"}}}", 0, NULL);
    assert (stats && state);
    char *text = herd_http_metrics ("Bailey", stats, state);
    if (verbose)
        printf ("%s", text);
    assert (strstr (text, "# TYPE herd_connections_open gauge\nherd_connections_open{server=\"Bailey\"} 3\n"));
    assert (strstr (text, "herd_commands_total{server=\"Bailey\",kind=\"IAMAT\"} 7\n"));
    assert (strstr (text, "herd_journal_syncs_total{server=\"Bailey\"} 5\n"));
    assert (strstr (text, "herd_journal_sync_seconds_max{server=\"Bailey\"} 0.0015\n"));
    assert (strstr (text, "herd_journal_ok{server=\"Bailey\"} 1\n"));
    assert (strstr (text, "herd_link_up{server=\"Bailey\",neighbour=\"Bona\"} 1\n"));
    assert (strstr (text, "herd_link_up{server=\"Bailey\",neighbour=\"Clark\"} 0\n"));
    assert (strstr (text, "herd_link_heard_seconds_ago{server=\"Bailey\",neighbour=\"Bona\"} 0.25\n"));
    assert (!strstr (text, "neighbour=\"Clark\"} 0.") && strstr (text, "herd_caught_up{server=\"Bailey\"} 1\n"));
    assert (strstr (text, "herd_iamats_refused_total{server=\"Bailey\",reason=\"store_full\"} 4\n"));
    assert (strstr (text, "# TYPE herd_places_provider_seconds histogram\n"));
    assert (strstr (text, "herd_places_provider_seconds_bucket{server=\"Bailey\",le=\"0.005\"} 1\n"));
    assert (strstr (text, "herd_places_provider_seconds_bucket{server=\"Bailey\",le=\"+Inf\"} 3\n"));
    assert (strstr (text, "herd_places_provider_seconds_sum{server=\"Bailey\"} 0.0305\n"));
    assert (strstr (text, "herd_places_provider_seconds_count{server=\"Bailey\"} 3\n"));
    //  What STATS lacks is left out, never made up
    assert (!strstr (text, "herd_clients_stored"));
    freen (text);
    json_decref (stats);

    //  Every row of the table: a STATS with a number of its own at each
    //  path (an object of one for labelled rows) comes out as that row's
    //  metric, with that number, and the path in its HELP
    stats = json_object ();
    size_t rows = sizeof s_metrics / sizeof s_metrics [0];
    for (size_t row = 0; row < rows; row++) {
        json_t *node = stats;
        char *copy = strdup (s_metrics [row].path);
        char *slash = strrchr (copy, '/');
        if (slash) {
            *slash = 0;
            if (!json_object_get (stats, copy))
                json_object_set_new (stats, copy, json_object ());
            node = json_object_get (stats, copy);
        }
        const char *key = slash? slash + 1: copy;
        json_t *value = json_integer ((json_int_t) (row + 1) * 1000000);
        if (s_metrics [row].label)
            json_object_set_new (node, key, json_pack ("{s:o}", "one", value));
        else
            json_object_set_new (node, key, value);
        freen (copy);
    }
    text = herd_http_metrics ("Bailey", stats, state);
    for (size_t row = 0; row < rows; row++) {
        const s_metric_t *metric = &s_metrics [row];
        double expected = (double) (row + 1) * 1000000 / (strstr (metric->name, "_seconds")? 1e6: 1);
        char *sample = metric->label?
            zsys_sprintf ("\n%s{server=\"Bailey\",%s=\"one\"} %.15g\n", metric->name, metric->label, expected):
            zsys_sprintf ("\n%s{server=\"Bailey\"} %.15g\n", metric->name, expected);
        char *help = zsys_sprintf ("# HELP %s %s (STATS %s)\n", metric->name, metric->help, metric->path);
        if (!strstr (text, sample) || !strstr (text, help))
            fprintf (stderr, "missing: %s%s", sample, help);
        assert (strstr (text, sample) && strstr (text, help));
        freen (sample);
        freen (help);
    }
    freen (text);
    json_decref (stats);
    json_decref (state);
    printf ("OK\n");
}
