//  monitor/herd_web.c: herd-monitor --web, the live map.
//
//  The main thread reads every server's feed into the client table and
//  asks each admin endpoint for STATE and STATS every second; libmicro-
//  httpd's threads (one per browser connection, so an event stream may
//  wait between its ticks) read the table under the lock.

#include "bus/herd_bus_layer.h"
#include "places/herd_places_layer.h"
#include "herd_web.h"
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <math.h>

extern const char herd_web_page [];     //  monitor/herd_web_page.html, built in

#define S_TICK_MSECS        250         //  An event stream sends at most this often
#define S_TICK_CLIENTS      5000        //  ... and at most this many clients each time
                                        //  (about 1.2 MB/s at most to a browser)
#define S_CLIENTS_MAX       2000000     //  Past this, the oldest client is forgotten
//  What no browser, and no socket without the token, can hold
//  (core/herd_http_guard): a new connection ends the oldest request
//  connection of its address, or of all, when the bounds are reached
#define S_CONNECTIONS_MAX   256         //  Connections at once (a thread each)
#define S_PER_ADDRESS       16          //  Of which from one address
#define S_STREAMS_MAX       8           //  Of which event streams: a new one ends the stalest
#define S_REQUEST_MSECS     10000       //  A request connection's whole life at most
#define S_STALL_MSECS       10000       //  An event stream that takes nothing this long ends
#define S_IDLE_SECONDS      5           //  A connection silent this long is closed
#define S_WHATSAT_TIMEOUT   5           //  secs for a WHATSAT's answer
#define S_WHATSAT_MAX       (64 * 1024) //  bytes of it

//  One client as the feeds told it: the newest update wins
typedef struct {
    char *id;
    char *line;                 //  Its AT line
    size_t line_size;
    char server [64];           //  The server that heard it first
    double latitude, longitude;
    double time;                //  Client time, secs (for the page: it fades)
    bool gone;                  //  Forgotten (its line is a GONE): the page drops it
    uint64_t version;           //  Table version of its last change
    void *handle;               //  In the table's order
} s_client_t;

//  One server: its feed, its admin endpoint, what it said last
typedef struct {
    const char *name;           //  From the config (borrowed)
    zsock_t *feed;              //  SUB to its feed, or NULL (it has none)
    herd_admin_t *admin;        //  Its admin endpoint, or NULL
    bool asked;                 //  Its socket is in the poller, answers due
    json_t *state, *stats;      //  This round's answers, or NULL
    json_t *view;               //  What the page shows of it (owned)
    double updates_in;          //  Last STATS counter, for the rate
    int64_t updates_in_at;
} s_server_t;

typedef struct {
    herd_config_t *config;      //  Borrowed
    herd_keys_t *keys;          //  Borrowed
    char *token;
    pthread_mutex_t lock;       //  Guards what follows, to the end
    zhashx_t *clients;          //  id -> s_client_t (owned)
    zlistx_t *order;            //  s_client_t by version, oldest first
    uint64_t version;
    size_t gone_count;          //  Clients in the table that are forgotten
    char *herd_json;            //  The herd view, remade every second
    uint64_t bytes_sent;        //  To browsers, event streams only
    bool stopping;
    herd_http_guard_t *guard;   //  Bounds on browser connections (owned; thread-safe)
    //  Read only once serving starts
    char *land;                 //  int16 pairs: latitude, longitude x 10
    herd_offline_t *places;     //  The places data, for names at city zoom (under lock)
    size_t land_size;
    s_server_t *servers;
    size_t server_count;
} s_web_t;

static void
s_client_destroy (void **item_p)
{
    s_client_t *client = (s_client_t *) *item_p;
    if (client) {
        freen (client->id);
        freen (client->line);
        freen (client);
        *item_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  The client table (main thread writes, browsers read; under the lock)

static void
s_take_update (s_web_t *self, const herd_at_t *at)
{
    //  A forget (GONE) keeps its entry, marked, so an older update that
    //  comes later from another feed does not bring the client back
    double latitude = 0, longitude = 0;
    if (!at->gone)
        herd_protocol_at_position (at, &latitude, &longitude);
    char id [HERD_CLIENT_ID_MAX + 1];
    size_t size = MIN (at->client.size, sizeof id - 1);
    memcpy (id, at->client.start, size);
    id [size] = 0;
    s_client_t *client = (s_client_t *) zhashx_lookup (self->clients, id);
    char time_text [64];
    size = MIN (at->time.size, sizeof time_text - 1);
    memcpy (time_text, at->time.start, size);
    time_text [size] = 0;
    double time = strtod (time_text, NULL);
    //  Newer-wins as the servers apply it (each update comes from every feed)
    if (client && herd_protocol_at_order (at->line.start, at->line.size, at->time, client->line,
                                          client->line_size,
                                          herd_protocol_at_time (client->line, client->line_size)) <= 0)
        return;
    if (!client) {
        if (zhashx_size (self->clients) >= S_CLIENTS_MAX) {
            s_client_t *oldest = (s_client_t *) zlistx_first (self->order);
            self->gone_count -= oldest->gone;
            zlistx_delete (self->order, oldest->handle);
            zhashx_delete (self->clients, oldest->id);
        }
        client = (s_client_t *) zmalloc (sizeof (s_client_t));
        client->id = strdup (id);
        zhashx_insert (self->clients, id, client);
        client->handle = zlistx_add_end (self->order, client);
    }
    else {
        freen (client->line);
        zlistx_move_end (self->order, client->handle);
    }
    client->line = strndup (at->line.start, at->line.size);
    client->line_size = at->line.size;
    size = MIN (at->server.size, sizeof client->server - 1);
    memcpy (client->server, at->server.start, size);
    client->server [size] = 0;
    client->latitude = latitude;
    client->longitude = longitude;
    client->time = time;
    self->gone_count += (int) at->gone - (int) client->gone;
    client->gone = at->gone;
    client->version = ++self->version;
}

//  The next event of a stream: the clients changed since cursor, oldest
//  first, at most S_TICK_CLIENTS of them. Caller frees.
static char *
s_clients_since (s_web_t *self, uint64_t *cursor)
{
    json_t *list = json_array ();
    pthread_mutex_lock (&self->lock);
    s_client_t *client = (s_client_t *) zlistx_last (self->order);
    s_client_t *first = NULL;
    while (client && client->version > *cursor) {
        first = client;
        client = (s_client_t *) zlistx_prev (self->order);
    }
    //  zlistx's cursor is on the one before first: walk on from there
    client = first? (client? (s_client_t *) zlistx_next (self->order): (s_client_t *) zlistx_first (self->order))
           : NULL;
    for (size_t count = 0; client && count < S_TICK_CLIENTS;
         client = (s_client_t *) zlistx_next (self->order), count++) {
        //  A forgotten client: no position, the page drops it
        json_array_append_new (list, client->gone
                               ? json_pack ("[s, n, n, f, s]", client->id, client->time, client->server)
                               : json_pack ("[s, f, f, f, s]", client->id, client->latitude,
                                            client->longitude, client->time, client->server));
        *cursor = client->version;
    }
    size_t total = zhashx_size (self->clients) - self->gone_count;
    pthread_mutex_unlock (&self->lock);
    char *text = NULL;
    if (json_array_size (list)) {
        json_t *event = json_pack ("{s:o, s:I}", "clients", list, "total", (json_int_t) total);
        char *data = json_dumps (event, JSON_COMPACT);
        text = zsys_sprintf ("data: %s\n\n", data);
        freen (data);
        json_decref (event);
    }
    else
        json_decref (list);
    return text;
}

//  --------------------------------------------------------------------------
//  The land: every place of the places data, rounded to a tenth of a
//  degree, each cell once (about 150,000 of 263,000)

static void
s_load_land (s_web_t *self)
{
    char *error = NULL;
    const char *path = herd_config_string (self->config, "places/offline/data");
    herd_offline_t *places = herd_offline_load (path, &error);
    if (!places) {
        zsys_warning ("web: no land to draw: %s", error);
        freen (error);
        return;
    }
    size_t cells = 1801 * 3601;
    uint8_t *seen = (uint8_t *) zmalloc (cells / 8 + 1);
    size_t count = herd_offline_size (places);
    int16_t *land = (int16_t *) zmalloc (count * 2 * sizeof (int16_t));
    size_t kept = 0;
    for (size_t index = 0; index < count; index++) {
        double latitude, longitude;
        herd_offline_position (places, (uint32_t) index, &latitude, &longitude);
        int row = (int) lround (latitude * 10), column = (int) lround (longitude * 10);
        if (row < -900 || row > 900 || column < -1800 || column > 1800)
            continue;
        size_t cell = (size_t) (row + 900) * 3601 + (size_t) (column + 1800);
        if (seen [cell / 8] & (1 << (cell % 8)))
            continue;
        seen [cell / 8] |= (uint8_t) (1 << (cell % 8));
        land [kept * 2] = (int16_t) row;        //  Little-endian on every host we build for
        land [kept * 2 + 1] = (int16_t) column;
        kept++;
    }
    freen (seen);
    self->land = (char *) land;
    self->land_size = kept * 2 * sizeof (int16_t);
    zsys_info ("web: land drawn from %zu places in %zu cells of %s", count, kept, path);
    //  Kept for the names a zoomed-in map shows (s_names)
    self->places = places;
}

//  --------------------------------------------------------------------------
//  The herd view: each server's STATE and STATS, asked every second

static void
s_admin_connect (s_web_t *self, s_server_t *server)
{
    char *error = NULL;
    server->admin = herd_admin_new (self->config, self->keys, server->name, &error);
    if (!server->admin) {
        zsys_warning ("web: %s", error);
        freen (error);
    }
}

//  What the page shows of a server, from this round's answers
static void
s_server_view (s_server_t *server, zlistx_t *neighbours, int64_t now)
{
    json_t *view = json_pack ("{s:s, s:b}", "name", server->name, "up", server->state && server->stats);
    json_t *names = json_array ();
    for (const char *name = (const char *) zlistx_first (neighbours); name;
         name = (const char *) zlistx_next (neighbours))
        json_array_append_new (names, json_string (name));
    json_object_set_new (view, "neighbours", names);
    if (server->state && server->stats) {
        const char *keys [] = { "clients", "store_full", "caught_up", "links", "catch_up" };
        for (size_t index = 0; index < sizeof keys / sizeof keys [0]; index++) {
            json_t *value = json_object_get (server->state, keys [index]);
            if (value)
                json_object_set (view, keys [index], value);
        }
        double updates_in = herd_counters_value (server->stats, HERD_COUNTER_UPDATES_IN, NULL);
        //  A counter that went down is a server that restarted: what it
        //  counts now came since, within the round (as Prometheus's rate())
        double delta = updates_in >= server->updates_in? updates_in - server->updates_in: updates_in;
        if (server->updates_in_at && now > server->updates_in_at)
            json_object_set_new (view, "updates_in_per_s",
                                 json_real (delta * 1000.0 / (double) (now - server->updates_in_at)));
        server->updates_in = updates_in;
        server->updates_in_at = now;
    }
    json_decref (server->view);
    server->view = view;
}

static void
s_herd_view (s_web_t *self, int64_t now)
{
    json_t *servers = json_array ();
    for (size_t index = 0; index < self->server_count; index++) {
        s_server_t *server = &self->servers [index];
        s_server_view (server, herd_config_neighbours (self->config, server->name), now);
        json_array_append (servers, server->view);
    }
    pthread_mutex_lock (&self->lock);
    json_t *view = json_pack ("{s:o, s:I, s:I, s:f}", "servers", servers,
                              "clients", (json_int_t) zhashx_size (self->clients),
                              "bytes_sent", (json_int_t) self->bytes_sent, "time", zclock_time () / 1000.0);
    char *text = json_dumps (view, JSON_COMPACT);
    freen (self->herd_json);
    self->herd_json = text;
    pthread_mutex_unlock (&self->lock);
    json_decref (view);
}

//  --------------------------------------------------------------------------
//  WHATSAT around a client, asked of the server that heard it first

static char *
s_whatsat (s_web_t *self, const char *id, const char *radius)
{
    pthread_mutex_lock (&self->lock);
    s_client_t *client = (s_client_t *) zhashx_lookup (self->clients, id);
    char server [64] = "";
    if (client)
        strcpy (server, client->server);
    pthread_mutex_unlock (&self->lock);
    if (!client)
        return NULL;
    const char *endpoint = herd_config_has_server (self->config, server)?
                           herd_config_server_endpoint (self->config, server, "client"): NULL;
    if (!endpoint)
        return strdup ("{\"error\": \"the server that heard it is not in the config\"}");
    struct addrinfo *found = NULL;
    char *error = NULL;
    if (herd_address_resolve (endpoint, false, &found, &error)) {
        freen (error);
        return strdup ("{\"error\": \"cannot resolve the server's client address\"}");
    }
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval timeout = { .tv_sec = S_WHATSAT_TIMEOUT };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    bool connected = fd != -1 && connect (fd, found->ai_addr, found->ai_addrlen) == 0;
    freeaddrinfo (found);
    char *answer = (char *) zmalloc (S_WHATSAT_MAX + 1);
    size_t size = 0;
    if (connected) {
        char *request = zsys_sprintf ("WHATSAT %s %s 20\n", id, radius);
        if (write (fd, request, strlen (request)) == (ssize_t) strlen (request)) {
            //  The answer ends with an empty line
            while (size < S_WHATSAT_MAX && !(size >= 2 && strstr (answer, "\n\n"))) {
                ssize_t got = read (fd, answer + size, S_WHATSAT_MAX - size);
                if (got <= 0)
                    break;
                size += (size_t) got;
                answer [size] = 0;
            }
        }
        freen (request);
    }
    if (fd != -1)
        close (fd);
    char *newline = strchr (answer, '\n');
    json_t *result = NULL;
    if (newline && strncmp (answer, "AT ", 3) == 0) {
        *newline = 0;
        json_t *places = json_loads (newline + 1, JSON_DISABLE_EOF_CHECK, NULL);
        result = json_pack ("{s:s, s:s, s:o}", "at", answer, "server", server,
                            "answer", places? places: json_null ());
    }
    else
        result = json_pack ("{s:s, s:s}", "error", size? "the server answered with no AT line"
                                                       : "no answer from the server", "server", server);
    freen (answer);
    char *text = json_dumps (result, JSON_COMPACT);
    json_decref (result);
    return text;
}

//  --------------------------------------------------------------------------
//  HTTP

typedef struct {
    s_web_t *web;
    struct MHD_Connection *connection;  //  Its own (borrowed)
    uint64_t cursor;            //  Version of the last client sent
    char *event;                //  Being sent, or NULL
    size_t size, sent;
    int64_t next_tick;
} s_stream_t;

static ssize_t
s_stream_read (void *arg, uint64_t position, char *buffer, size_t max)
{
    (void) position;
    s_stream_t *stream = (s_stream_t *) arg;
    while (!stream->event) {
        pthread_mutex_lock (&stream->web->lock);
        bool stopping = stream->web->stopping;
        pthread_mutex_unlock (&stream->web->lock);
        if (stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int64_t wait = stream->next_tick - zclock_mono ();
        if (wait > 0)
            zclock_sleep ((int) wait);
        stream->next_tick = zclock_mono () + S_TICK_MSECS;
        stream->event = s_clients_since (stream->web, &stream->cursor);
        //  Nothing new: a comment, so a broken connection is found
        if (!stream->event)
            stream->event = strdup (": idle\n\n");
        stream->size = strlen (stream->event);
        stream->sent = 0;
    }
    size_t size = MIN (max, stream->size - stream->sent);
    memcpy (buffer, stream->event + stream->sent, size);
    herd_http_guard_progress (stream->web->guard, stream->connection);
    stream->sent += size;
    if (stream->sent == stream->size)
        freen (stream->event);
    pthread_mutex_lock (&stream->web->lock);
    stream->web->bytes_sent += size;
    pthread_mutex_unlock (&stream->web->lock);
    return (ssize_t) size;
}

static void
s_stream_free (void *arg)
{
    s_stream_t *stream = (s_stream_t *) arg;
    freen (stream->event);
    freen (stream);
}

//  Every byte of both is looked at, whatever differs first
static bool
s_token_matches (const char *given, const char *token)
{
    if (!given)
        return false;
    size_t given_size = strlen (given), size = strlen (token);
    unsigned char difference = given_size != size;
    for (size_t index = 0; index < size; index++)
        difference |= (unsigned char) (token [index] ^ (index < given_size? given [index]: 0));
    return difference == 0;
}

static enum MHD_Result
s_reply (struct MHD_Connection *connection, unsigned status, const char *type, const char *body,
         size_t size, bool copy)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, (void *) body, copy? MHD_RESPMEM_MUST_COPY: MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_handle (void *arg, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **request)
{
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) request;
    s_web_t *self = (s_web_t *) arg;
    if (strneq (method, "GET"))
        return s_reply (connection, 405, "text/plain", "GET only\n", 9, false);
    //  The token as ?token=, or as a bearer token
    const char *given = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "token");
    const char *authorization = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Authorization");
    if (!given && authorization && strncmp (authorization, "Bearer ", 7) == 0)
        given = authorization + 7;
    if (!s_token_matches (given, self->token))
        return s_reply (connection, 401, "text/plain", "401 Unauthorized\n", 17, false);

    if (streq (url, "/"))
        return s_reply (connection, 200, "text/html; charset=utf-8", herd_web_page,
                        strlen (herd_web_page), false);
    if (streq (url, "/land"))
        return s_reply (connection, 200, "application/octet-stream", self->land? self->land: "",
                        self->land_size, false);
    if (streq (url, "/herd")) {
        pthread_mutex_lock (&self->lock);
        char *text = strdup (self->herd_json? self->herd_json: "{\"servers\": []}");
        pthread_mutex_unlock (&self->lock);
        enum MHD_Result rc = s_reply (connection, 200, "application/json", text, strlen (text), true);
        freen (text);
        return rc;
    }
    if (streq (url, "/events")) {
        s_stream_t *stream = (s_stream_t *) zmalloc (sizeof (s_stream_t));
        stream->web = self;
        stream->connection = connection;
        herd_http_guard_stream (self->guard, connection);
        struct MHD_Response *response = MHD_create_response_from_callback (
            MHD_SIZE_UNKNOWN, 64 * 1024, s_stream_read, stream, s_stream_free);
        MHD_add_response_header (response, "Content-Type", "text/event-stream");
        MHD_add_response_header (response, "Cache-Control", "no-store");
        enum MHD_Result rc = MHD_queue_response (connection, 200, response);
        MHD_destroy_response (response);
        return rc;
    }
    if (streq (url, "/names")) {
        //  The places nearest the middle of a zoomed-in view, for names
        //  to orient by: the offline data's own answer
        const char *lat = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "lat");
        const char *lon = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "lon");
        const char *km = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "km");
        herd_query_t query = { lat? atof (lat): 0, lon? atof (lon): 0, km? atof (km) * 1000: 0, HERD_RESULTS_MAX };
        if (!self->places || !lat || !lon || !km || fabs (query.latitude) > 90 || fabs (query.longitude) > 180
        ||  !(query.radius_m > 0) || query.radius_m > HERD_RADIUS_KM_MAX * 1000)
        {
            const char *refusal = "{\"error\": \"lat, lon, km (to 50)\"}";
            return s_reply (connection, 400, "application/json", refusal, strlen (refusal), false);
        }
        pthread_mutex_lock (&self->lock);
        json_t *answer = herd_offline_search (self->places, &query);
        pthread_mutex_unlock (&self->lock);
        char *text = json_dumps (answer, JSON_COMPACT);
        json_decref (answer);
        enum MHD_Result rc = s_reply (connection, 200, "application/json", text, strlen (text), true);
        freen (text);
        return rc;
    }
    const char *id = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "client");
    bool id_good = id && *id && strlen (id) <= HERD_CLIENT_ID_MAX && !strpbrk (id, " \t\r\n\v\f");
    if (streq (url, "/client") && id_good) {
        pthread_mutex_lock (&self->lock);
        s_client_t *client = (s_client_t *) zhashx_lookup (self->clients, id);
        json_t *json = client? json_pack ("{s:s, s:s, s:s, s:f, s:f, s:f}", "client", client->id,
                                          "at", client->line, "server", client->server,
                                          "latitude", client->latitude, "longitude", client->longitude,
                                          "time", client->time): NULL;
        pthread_mutex_unlock (&self->lock);
        if (!json)
            return s_reply (connection, 404, "application/json", "{\"error\": \"no such client\"}", 28, false);
        char *text = json_dumps (json, JSON_COMPACT);
        json_decref (json);
        enum MHD_Result rc = s_reply (connection, 200, "application/json", text, strlen (text), true);
        freen (text);
        return rc;
    }
    if (streq (url, "/whatsat") && id_good) {
        const char *radius = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "radius");
        char *end = NULL;
        double km = radius? strtod (radius, &end): 0;
        if (!radius || end == radius || *end || !(km > 0 && km <= HERD_RADIUS_KM_MAX))
            return s_reply (connection, 400, "application/json",
                            "{\"error\": \"radius: more than 0 km, at most 50\"}", 45, false);
        char *text = s_whatsat (self, id, radius);
        if (!text)
            return s_reply (connection, 404, "application/json", "{\"error\": \"no such client\"}", 28, false);
        enum MHD_Result rc = s_reply (connection, 200, "application/json", text, strlen (text), true);
        freen (text);
        return rc;
    }
    return s_reply (connection, 404, "text/plain", "404 Not Found\n", 14, false);
}

//  --------------------------------------------------------------------------

//  "PORT" or "HOST:PORT" (127.0.0.1 if no host), the first address found
static struct addrinfo *
s_resolve_web (const char *address, char **error_p)
{
    char *text = strchr (address, ':')? strdup (address): zsys_sprintf ("127.0.0.1:%s", address);
    struct addrinfo *found = NULL;
    char *error = NULL;
    if (herd_address_resolve (text, true, &found, &error)) {
        *error_p = zsys_sprintf ("--web %s", error);
        freen (error);
    }
    freen (text);
    return found;
}

static char *
s_new_token (void)
{
    unsigned char bytes [16];
    FILE *random = fopen ("/dev/urandom", "rb");
    bool got = random && fread (bytes, 1, sizeof bytes, random) == sizeof bytes;
    if (random)
        fclose (random);
    if (!got)
        return NULL;
    char *token = (char *) zmalloc (2 * sizeof bytes + 1);
    for (size_t index = 0; index < sizeof bytes; index++)
        sprintf (token + 2 * index, "%02x", bytes [index]);
    return token;
}

//  The herd as one server holds it now: a snapshot over the catch-up
//  protocol (docs/PROTOCOL.md section 4), asked with the monitor's key by
//  the servers' own catch-up client (bus/herd_catchup) in a loop of its
//  own, from the first server that answers. The feeds are subscribed
//  already; newer-wins merges what they bring with it, so a map started
//  after the clients came shows them all.
typedef struct {
    s_web_t *web;
    herd_catchup_t *catchup;
    size_t taken;               //  Lines taken into the table
    bool done, failed;
    int64_t asking_until;       //  Asks fail until the link is up: this long
    int64_t deadline;           //  For the whole snapshot
} s_snapshot_t;

static int
s_snapshot_line (const char *line, size_t size, void *arg)
{
    s_snapshot_t *snapshot = (s_snapshot_t *) arg;
    herd_at_t at;
    if (herd_protocol_parse_at (line, size, &at))
        return HERD_STORE_INVALID;
    pthread_mutex_lock (&snapshot->web->lock);
    s_take_update (snapshot->web, &at);
    pthread_mutex_unlock (&snapshot->web->lock);
    snapshot->taken++;
    return HERD_STORE_STORED;
}

static void
s_snapshot_done (void *arg)
{
    ((s_snapshot_t *) arg)->done = true;
}

static void
s_snapshot_failed (const char *why, void *arg)
{
    (void) why;
    ((s_snapshot_t *) arg)->failed = true;
}

//  Every 100 ms: asks until the link takes the request, ends the loop
//  once the snapshot is whole, has failed, or took too long
static int
s_snapshot_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_snapshot_t *snapshot = (s_snapshot_t *) arg;
    int64_t now = zclock_mono ();
    if (snapshot->done || snapshot->failed || zsys_interrupted || now > snapshot->deadline)
        return -1;
    if (!herd_catchup_active (snapshot->catchup) && herd_catchup_ask (snapshot->catchup)
    &&  now > snapshot->asking_until)
        return -1;
    return 0;
}

static void
s_load_snapshot (s_web_t *self)
{
    zlistx_t *names = herd_config_servers (self->config);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        const char *sync = herd_config_server_endpoint (self->config, name, "sync");
        if (!sync)
            continue;
        char *error = NULL;
        s_snapshot_t snapshot = { self, herd_catchup_new (name, sync, self->keys, &error), 0, false, false,
                                  zclock_mono () + 3000, zclock_mono () + 60000 };
        if (!snapshot.catchup) {
            zsys_warning ("web: no snapshot from %s: %s", name, error);
            freen (error);
            continue;
        }
        zloop_t *loop = zloop_new ();
        herd_catchup_handler_t handler = { s_snapshot_line, NULL, s_snapshot_done, s_snapshot_failed, &snapshot };
        herd_catchup_attach (snapshot.catchup, loop, &handler);
        zloop_timer (loop, 100, 0, s_snapshot_tick, &snapshot);
        zloop_start (loop);
        herd_catchup_destroy (&snapshot.catchup);       //  Its reader leaves the loop first
        zloop_destroy (&loop);
        if (snapshot.done) {
            zsys_info ("web: started from %s's snapshot: %zu clients", name, snapshot.taken);
            return;
        }
        zsys_warning ("web: no snapshot from %s (no answer); trying the next", name);
    }
    zsys_warning ("web: no server gave a snapshot: the map shows clients as they move");
}

int
herd_web_run (herd_config_t *config, herd_keys_t *keys, const char *address, const char *token,
              long seconds)
{
    assert (config && keys && address);
    char *error = NULL;
    struct addrinfo *where = s_resolve_web (address, &error);
    if (!where) {
        fprintf (stderr, "herd-monitor: %s\n", error);
        freen (error);
        return 1;
    }
    s_web_t *self = (s_web_t *) zmalloc (sizeof (s_web_t));
    self->config = config;
    self->keys = keys;
    self->token = token? strdup (token): s_new_token ();
    if (!self->token || strlen (self->token) < 16) {
        fprintf (stderr, "herd-monitor: %s\n", self->token? "the web token must be 16 characters or more"
                                                           : "cannot read /dev/urandom for a token");
        freen (self->token);
        freen (self);
        freeaddrinfo (where);
        return 1;
    }
    pthread_mutex_init (&self->lock, NULL);
    herd_http_guard_limits_t limits = {
        S_CONNECTIONS_MAX, S_PER_ADDRESS, S_STREAMS_MAX, S_REQUEST_MSECS, S_STALL_MSECS
    };
    self->guard = herd_http_guard_new (&limits);
    self->clients = zhashx_new ();
    zhashx_set_destructor (self->clients, s_client_destroy);
    self->order = zlistx_new ();
    s_load_land (self);

    //  Every server's feed and admin endpoint, with the monitor's key
    zlistx_t *names = herd_config_servers (config);     //  Borrowed
    self->server_count = zlistx_size (names);
    self->servers = (s_server_t *) calloc (self->server_count, sizeof (s_server_t));
    zpoller_t *poller = zpoller_new (NULL);
    int rc = 0;
    size_t index = 0;
    for (const char *name = (const char *) zlistx_first (names); name && rc == 0;
         name = (const char *) zlistx_next (names), index++) {
        s_server_t *server = &self->servers [index];
        server->name = name;
        const char *feed = herd_config_server_endpoint (config, name, "feed");
        if (!feed)
            continue;
        server->feed = herd_feed_subscriber_new (feed, "", keys, name, &error);
        if (!server->feed) {
            fprintf (stderr, "herd-monitor: %s\n", error);
            freen (error);
            rc = 1;
            break;
        }
        zpoller_add (poller, server->feed);
    }
    for (index = 0; index < self->server_count && rc == 0; index++)
        s_admin_connect (self, &self->servers [index]);
    if (rc == 0)
        s_load_snapshot (self);
    struct MHD_Daemon *daemon = rc? NULL:
        //  poll(2), not select(2): a descriptor past 1024 is no reason to refuse
        MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG
                          | (where->ai_family == AF_INET6? MHD_USE_IPv6: 0),
                          0, herd_http_guard_admit, self->guard, s_handle, self,
                          MHD_OPTION_EXTERNAL_LOGGER, herd_http_guard_log, self->guard,
                          MHD_OPTION_SOCK_ADDR, where->ai_addr,
                          //  Room past the guard's bound for those it ended, which count
                          //  until their threads have seen them close
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned int) S_CONNECTIONS_MAX * 8,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_IDLE_SECONDS,
                          MHD_OPTION_NOTIFY_CONNECTION, herd_http_guard_notify, self->guard,
                          MHD_OPTION_END);
    if (!rc && !daemon) {
        fprintf (stderr, "herd-monitor: cannot serve the web page on %s: %s\n", address, strerror (errno));
        rc = 1;
    }
    if (daemon) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
        char host [INET6_ADDRSTRLEN] = "?";
        getnameinfo (where->ai_addr, where->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST);
        bool six = where->ai_family == AF_INET6;
        printf ("herd-monitor: the live map of %zu servers is at http://%s%s%s:%u/?token=%s\n",
                self->server_count, six? "[": "", host, six? "]": "", info? info->port: 0, self->token);
        fflush (stdout);
    }
    freeaddrinfo (where);
    int64_t started = zclock_mono ();
    int64_t next_round = started;
    while (rc == 0 && !zsys_interrupted && (!seconds || zclock_mono () - started < seconds * 1000)) {
        int64_t now = zclock_mono ();
        if (now >= next_round) {
            //  Answers of the round that ends make the view; a server that
            //  did not answer both loses its socket and any late answer
            if (now > started)
                s_herd_view (self, now);
            for (index = 0; index < self->server_count; index++) {
                s_server_t *server = &self->servers [index];
                if (!server->admin)
                    continue;
                if (server->asked) {
                    zpoller_remove (poller, herd_admin_sock (server->admin));
                    if (!server->state || !server->stats)
                        herd_admin_reset (server->admin);
                }
                json_decref (server->state);
                json_decref (server->stats);
                server->state = server->stats = NULL;
                server->asked = herd_admin_send (server->admin, "STATE") == 0
                             && herd_admin_send (server->admin, "STATS") == 0;
                if (server->asked)
                    zpoller_add (poller, herd_admin_sock (server->admin));
            }
            next_round = now + 1000;
            herd_http_guard_sweep (self->guard);
        }
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
        if (!which)
            continue;
        for (index = 0; index < self->server_count; index++) {
            s_server_t *server = &self->servers [index];
            if (server->admin && which == herd_admin_sock (server->admin)) {
                json_t *json = herd_admin_recv (server->admin, 0);
                if (!server->state)
                    server->state = json;
                else
                if (!server->stats)
                    server->stats = json;
                else
                    json_decref (json);
            }
            else
            if (which == server->feed) {
                //  All that waits, up to a bound, under one lock
                pthread_mutex_lock (&self->lock);
                herd_bus_feed_msg_t message;
                int got = 1;
                for (int round = 0; round < 1000 && got; round++)
                    if ((got = herd_bus_msg_receive_feed (zsock_resolve (which), &message)) == 1) {
                        s_take_update (self, &message.decoded.at);
                        herd_bus_msg_feed_close (&message);
                    }
                pthread_mutex_unlock (&self->lock);
            }
        }
    }
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_mutex_unlock (&self->lock);
    if (daemon)
        MHD_stop_daemon (daemon);
    herd_http_guard_destroy (&self->guard);
    zpoller_destroy (&poller);
    for (index = 0; index < self->server_count; index++) {
        s_server_t *server = &self->servers [index];
        zsock_destroy (&server->feed);
        herd_admin_destroy (&server->admin);
        json_decref (server->state);
        json_decref (server->stats);
        json_decref (server->view);
    }
    freen (self->servers);
    zlistx_destroy (&self->order);
    zhashx_destroy (&self->clients);
    freen (self->herd_json);
    freen (self->land);
    herd_offline_destroy (&self->places);
    freen (self->token);
    pthread_mutex_destroy (&self->lock);
    freen (self);
    return rc;
}
