//  node/herd_http.c: /metrics, /healthz and /readyz over libmicrohttpd.

#include "node/herd_node_layer.h"
#include <microhttpd.h>
#include <netdb.h>
#include <dirent.h>
#include <sys/resource.h>

//  What no client can hold, so that a probe always gets in
//  (core/herd_http_guard): slow or idle connections make room for a new
//  one from their address, and a connection that sends a byte now and
//  then still ends (as a web server bounds a request header's whole
//  time, not just its silences)
#define S_ASK_TIMEOUT   2000        //  msecs the node has to answer
#define S_CONNECTIONS   8192        //  HTTP connections at once (epoll: no FD_SETSIZE)
#define S_MEMORY        8192        //  Bytes for one connection's request (GETs are small)
#define S_PER_ADDRESS   32          //  Of which from one address (a new one ends the oldest)
#define S_IDLE_SECONDS  5           //  An HTTP connection idle this long is closed
#define S_TOTAL_SECONDS 10          //  And one open this long, however busy

struct _herd_http_t {
    char *server;               //  Our server's name, the "server" label
    char *admin;                //  The node's inproc admin endpoint
    struct MHD_Daemon *daemon;  //  libmicrohttpd, with its own thread
    herd_admin_t *asker;        //  To the node: only the daemon's thread uses it
    herd_http_guard_t *guard;   //  What no client can hold (owned)
};

//  --------------------------------------------------------------------------
//  The metrics: each a JSON path in STATS (or STATE), a name, a type, help

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
    *value = json_is_true (json_object_get (link, "up"));
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
    *value = json_is_true (json_object_get (link, "syncing"));
    return true;
}

static bool
s_link_incompatible (json_t *link, double *value)
{
    *value = json_is_true (json_object_get (link, "incompatible"));
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

static const char *s_types [] = { "counter", "gauge", "histogram" };

//  A histogram from STATS ({"le_ms", "counts" cumulative, "sum_ms",
//  "count"}) in Prometheus's shape, in the metric's unit
static void
s_histogram (zchunk_t *text, const herd_counter_def_t *metric, const char *labels, json_t *value,
             const char *path)
{
    json_t *bounds = json_object_get (value, "le_ms"), *counts = json_object_get (value, "counts");
    if (!json_is_array (bounds) || !json_is_array (counts) || json_array_size (bounds) != json_array_size (counts))
        return;
    s_header (text, metric->name, "histogram", metric->help, path);
    char *bucket = zsys_sprintf ("%s_bucket", metric->name);
    for (size_t index = 0; index < json_array_size (bounds); index++) {
        char *bucket_labels = zsys_sprintf ("%s,le=\"%g\"", labels,
                                            json_number_value (json_array_get (bounds, index)) * metric->scale);
        s_sample (text, bucket, bucket_labels, json_number_value (json_array_get (counts, index)));
        freen (bucket_labels);
    }
    char *infinite = zsys_sprintf ("%s,le=\"+Inf\"", labels);
    double count = json_number_value (json_object_get (value, "count"));
    s_sample (text, bucket, infinite, count);
    freen (infinite);
    freen (bucket);
    char *sum = zsys_sprintf ("%s_sum", metric->name);
    s_sample (text, sum, labels, json_number_value (json_object_get (value, "sum_ms")) * metric->scale);
    freen (sum);
    char *total = zsys_sprintf ("%s_count", metric->name);
    s_sample (text, total, labels, count);
    freen (total);
}

//  What every exporter says of its process (the Prometheus client
//  libraries' process_* names), read from /proc, and the build
static void
s_process_metrics (zchunk_t *text, const char *labels)
{
    char *build = zsys_sprintf ("%s,version=\"%s\",bus_format=\"%d\"", labels, HERD_VERSION, HERD_BUS_FORMAT);
    s_header (text, "herd_build_info", "gauge", "Always 1: the release and bus format herd --version prints",
              "the build");
    s_sample (text, "herd_build_info", build, 1);
    freen (build);
    //  /proc/self/stat: after the command in parentheses, fields 3 on
    //  (utime is the 14th field, stime 15th, starttime 22nd, rss 24th)
    FILE *file = fopen ("/proc/self/stat", "r");
    char line [1024] = "";
    bool read = file && fgets (line, sizeof line, file);
    if (file)
        fclose (file);
    const char *fields = read? strrchr (line, ')'): NULL;
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long starttime = 0;
    long rss = 0;
    if (fields && sscanf (fields + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                                      "%*d %*d %llu %lu %ld", &utime, &stime, &starttime, &vsize, &rss) == 5) {
        double ticks = (double) sysconf (_SC_CLK_TCK);
        s_header (text, "process_cpu_seconds_total", "counter", "User and system CPU seconds", "/proc/self/stat");
        s_sample (text, "process_cpu_seconds_total", labels, (utime + stime) / ticks);
        s_header (text, "process_resident_memory_bytes", "gauge", "Resident memory", "/proc/self/stat");
        s_sample (text, "process_resident_memory_bytes", labels, (double) rss * (double) sysconf (_SC_PAGESIZE));
        s_header (text, "process_virtual_memory_bytes", "gauge", "Virtual memory", "/proc/self/stat");
        s_sample (text, "process_virtual_memory_bytes", labels, (double) vsize);
        //  Boot time, from /proc/stat's btime, makes the start a wall time
        file = fopen ("/proc/stat", "r");
        long long boot = -1;
        while (file && fgets (line, sizeof line, file))
            if (sscanf (line, "btime %lld", &boot) == 1)
                break;
        if (file)
            fclose (file);
        if (boot >= 0) {
            s_header (text, "process_start_time_seconds", "gauge", "Start time, seconds since the epoch",
                      "/proc/self/stat");
            s_sample (text, "process_start_time_seconds", labels, (double) boot + (double) starttime / ticks);
        }
    }
    size_t fds = 0;
    DIR *folder = opendir ("/proc/self/fd");
    for (struct dirent *entry = folder? readdir (folder): NULL; entry; entry = readdir (folder))
        fds += entry->d_name [0] != '.';
    if (folder) {
        closedir (folder);
        s_header (text, "process_open_fds", "gauge", "Open file descriptors (one of them, reading this)",
                  "/proc/self/fd");
        s_sample (text, "process_open_fds", labels, (double) (fds? fds - 1: 0));
    }
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0) {
        s_header (text, "process_max_fds", "gauge", "The limit on open file descriptors", "getrlimit");
        s_sample (text, "process_max_fds", labels, (double) limit.rlim_cur);
    }
}

char *
herd_http_metrics (const char *server, json_t *stats, json_t *state)
{
    assert (server);
    zchunk_t *text = zchunk_new (NULL, 8192);
    char *labels = zsys_sprintf ("server=\"%s\"", server);
    //  Every counter of the one table (core/herd_counters), each HELP
    //  naming its STATS path
    for (int id = 0; id < HERD_COUNTER_COUNT; id++) {
        const herd_counter_def_t *metric = herd_counters_def ((herd_counter_t) id);
        json_t *value = herd_counters_get (stats, (herd_counter_t) id);
        char *path = zsys_sprintf ("STATS %s", metric->path);
        if (metric->kind == HERD_COUNTER_KIND_HISTOGRAM)
            s_histogram (text, metric, labels, value, path);
        else
        if (metric->label && json_is_object (value)) {
            s_header (text, metric->name, s_types [metric->kind], metric->help, path);
            const char *key;
            json_t *count;
            json_object_foreach (value, key, count) {
                char *keyed = zsys_sprintf ("%s,%s=\"%s\"", labels, metric->label, key);
                s_sample (text, metric->name, keyed, json_number_value (count) * metric->scale);
                freen (keyed);
            }
        }
        else
        if (json_is_number (value) || json_is_boolean (value)) {
            s_header (text, metric->name, s_types [metric->kind], metric->help, path);
            double number = json_is_boolean (value)? json_is_true (value): json_number_value (value);
            s_sample (text, metric->name, labels, number * metric->scale);
        }
        freen (path);
    }
    //  Old names of renamed metrics, kept one release: the same samples
    struct { herd_counter_t id; const char *old; } aliases [] = {
#define HERD_COUNTER_ALIAS(id, old) { HERD_COUNTER_##id, old },
        HERD_COUNTER_ALIASES (HERD_COUNTER_ALIAS)
#undef HERD_COUNTER_ALIAS
    };
    for (size_t index = 0; index < sizeof aliases / sizeof aliases [0]; index++) {
        const herd_counter_def_t *metric = herd_counters_def (aliases [index].id);
        json_t *value = herd_counters_get (stats, aliases [index].id);
        if (!json_is_number (value))
            continue;
        char *help = zsys_sprintf ("Deprecated: %s, its name until 0.1.0 (removed in the next release)",
                                   metric->name);
        char *path = zsys_sprintf ("STATS %s", metric->path);
        s_header (text, aliases [index].old, s_types [metric->kind], help, path);
        s_sample (text, aliases [index].old, labels, json_number_value (value) * metric->scale);
        freen (path);
        freen (help);
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
        s_link_family (text, labels, links, "herd_link_incompatible",
                       "1 while the neighbour speaks another bus format (another release)", s_link_incompatible);
    }
    s_process_metrics (text, labels);
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
    herd_http_guard_limits_t limits = {
        S_CONNECTIONS, S_PER_ADDRESS, 1, S_TOTAL_SECONDS * 1000, S_TOTAL_SECONDS * 1000
    };
    self->guard = herd_http_guard_new (&limits);
    unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG
                       | (address->ai_family == AF_INET6? MHD_USE_IPv6: 0);
    //  The daemon may hold twice the guard's bound: connections the guard
    //  ended are counted until the daemon has closed them
    self->daemon = MHD_start_daemon (flags, 0, herd_http_guard_admit, self->guard, s_answer, self,
                                     MHD_OPTION_EXTERNAL_LOGGER, herd_http_guard_log, self->guard,
                                     MHD_OPTION_SOCK_ADDR, address->ai_addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) S_CONNECTIONS * 2,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_IDLE_SECONDS,
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_MEMORY,
                                     MHD_OPTION_NOTIFY_CONNECTION, herd_http_guard_notify, self->guard,
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
        herd_http_guard_destroy (&self->guard);
        freen (self->admin);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_http_sweep (herd_http_t *self)
{
    assert (self);
    herd_http_guard_sweep (self->guard);
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
        "{\"caught_up\": true, \"links\": {\"Bona\": {\"up\": true, \"syncing\": false,"
        " \"heard_ms_ago\": 250, \"state\": \"live\"}, \"Clark\": {\"up\": false, \"syncing\": true,"
        " \"heard_ms_ago\": null, \"state\": \"again\"}}}", 0, NULL);
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
    assert (strstr (text, "herd_build_info{server=\"Bailey\",version=\"" HERD_VERSION "\",bus_format=\"2\"} 1\n"));
    assert (strstr (text, "\nprocess_resident_memory_bytes{server=\"Bailey\"} "));
    assert (strstr (text, "\nprocess_cpu_seconds_total{server=\"Bailey\"} "));
    assert (strstr (text, "\nprocess_start_time_seconds{server=\"Bailey\"} "));
    assert (strstr (text, "\nprocess_open_fds{server=\"Bailey\"} "));
    assert (strstr (text, "herd_link_up{server=\"Bailey\",neighbour=\"Clark\"} 0\n"));
    assert (strstr (text, "herd_link_syncing{server=\"Bailey\",neighbour=\"Bona\"} 0\n"));
    assert (strstr (text, "herd_link_syncing{server=\"Bailey\",neighbour=\"Clark\"} 1\n"));
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

    //  Every counter of the table: a STATS with a number of its own at
    //  each path (an object of one for labelled ones) comes out as that
    //  counter's metric, with that number, and the path in its HELP
    stats = json_object ();
    for (int id = 0; id < HERD_COUNTER_COUNT; id++) {
        const herd_counter_def_t *metric = herd_counters_def ((herd_counter_t) id);
        if (metric->kind == HERD_COUNTER_KIND_HISTOGRAM)
            herd_counters_put_json (stats, (herd_counter_t) id, json_pack ("{s:[i], s:[i], s:i, s:i}",
                "le_ms", 10, "counts", id + 1, "sum_ms", 5, "count", id + 1));
        else
        if (metric->label)
            herd_counters_put_keyed (stats, (herd_counter_t) id, "one", (uint64_t) (id + 1) * 1000000);
        else
            herd_counters_put (stats, (herd_counter_t) id, (uint64_t) (id + 1) * 1000000);
    }
    text = herd_http_metrics ("Bailey", stats, state);
    for (int id = 0; id < HERD_COUNTER_COUNT; id++) {
        const herd_counter_def_t *metric = herd_counters_def ((herd_counter_t) id);
        double expected = (double) (id + 1) * 1000000 * metric->scale;
        char *sample =
            metric->kind == HERD_COUNTER_KIND_HISTOGRAM?
                zsys_sprintf ("\n%s_count{server=\"Bailey\"} %d\n", metric->name, id + 1):
            metric->label?
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
