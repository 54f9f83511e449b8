//  node/herd_node.c: a server's node: the update path and its state.

#include "node/herd_node_layer.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <dirent.h>
#include <sys/stat.h>

#define S_STATS_ASKERS_MAX  64      //  STATS askers waiting on the places broker at once

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zloop_t *loop;              //  Our one event loop
    herd_config_t *config;      //  Borrowed
    char *server;               //  Our name
    herd_keys_t *keys;          //  Our certificate and the handshake watch (owned)
    zactor_t *auth;             //  zauth: admits only listed keys (owned)
    herd_store_t *store;        //  Latest AT line per client (owned)
    herd_journal_t *journal;    //  The store on disk, or NULL (owned)
    herd_bus_t *bus;            //  Flooding, and a peer per neighbour (owned)
    herd_feed_t *feed;          //  Every accepted update, for monitors, or NULL (owned)
    herd_snapshot_t *snapshot;  //  Catch-up for neighbours that ask (owned)
    herd_frontend_t *frontend;  //  The clients (owned)
    herd_traffic_t *traffic;    //  Lines in and out, or NULL (owned)
    zsock_t *admin;             //  ROUTER for STATE and STATS (tcp if configured, and inproc)
    herd_http_t *http;          //  /metrics, /healthz, /readyz, or NULL (owned)
    herd_places_asker_t *places;   //  Asks the places broker (the frontend's WHATSATs too)
    herd_offline_t *offline;       //  The broker's offline data, answered from here (borrowed)
    zhashx_t *stats_askers;     //  STATS askers waiting on the broker's counters:
                                //  request id text -> routing id (zframe_t, owned)
    uint64_t next_stats_request;
    herd_reader_t *pipe_reader;     //  The sockets above, read in the loop
    herd_reader_t *admin_reader;
    int64_t started;            //  zclock_mono at start, for uptime
    uint64_t updates_in;        //  Accepted from neighbours' streams
    uint64_t updates_caught_up; //  Accepted from catch-up snapshots
    uint64_t dropped_future;    //  Neighbours' updates dropped for a client time too far ahead
    uint64_t unknown_server;    //  Neighbours' updates refused for naming no server of the herd
    herd_ratelimit_t *log;      //  What neighbours make us log, limited per neighbour (owned)
    long max_future;            //  herd/max_future: seconds, 0 for no bound
    int64_t future_after;       //  Client times past this second are refused (s_tick)
    long client_ttl;            //  herd/client_ttl: seconds, 0 for never
    long tombstone_ttl;         //  herd/tombstone_ttl: seconds
    int64_t forget_rewrite;     //  herd/forget_rewrite, in msecs
    size_t sweep_cursor;        //  Where expiry's sweep goes on
    uint64_t forgets;           //  Forgets applied (tombstones stored)
    uint64_t expired;           //  Clients expired (herd/client_ttl)
    uint64_t tombstones_dropped;    //  Tombstones past herd/tombstone_ttl
    uint64_t refused_expired;   //  Updates older than herd/client_ttl, refused
    long log_retention;         //  herd/log_retention: days, 0 keeps them
    int64_t expire_before;      //  Client times before this second are expired
} s_node_t;

//  The seconds of a valid client time, or of a skew, as a double: enough
//  for the expiry rules, which work to the second
static double
s_seconds (herd_field_t field)
{
    char text [48];
    size_t size = field.size < sizeof text - 1? field.size: sizeof text - 1;
    memcpy (text, field.start, size);
    text [size] = 0;
    return strtod (text, NULL);
}

//  The whole seconds of a valid client time (at most 18 digits), by hand:
//  this runs for every update while herd/client_ttl is set
static int64_t
s_whole_seconds (herd_field_t time)
{
    int64_t seconds = 0;
    for (size_t index = 0; index < time.size && time.start [index] != '.'; index++)
        seconds = seconds * 10 + (time.start [index] - '0');
    return seconds;
}

//  True if an update's client time is older than herd/client_ttl: every
//  server refuses and forgets those alike, with no message needed. To
//  the second, against a clock read once per sweep (50 ms), not per update.
static bool
s_expired (s_node_t *self, herd_field_t time)
{
    return self->client_ttl && s_whole_seconds (time) < self->expire_before;
}

//  Reads the clock for the rule above and the one below
static void
s_tick (s_node_t *self)
{
    int64_t now = (int64_t) (zclock_time () / 1000);
    self->expire_before = now - self->client_ttl;
    self->future_after = now + self->max_future;
}

//  --------------------------------------------------------------------------
//  The one funnel every update goes through: stored if newer, then
//  journaled (written before any reply goes out, by s_commit) and flooded

//  True if at's client time lies more than max_future seconds ahead of
//  our clock: such a line would pin its client until then. Whole seconds,
//  against the clock of the last tick (50 ms at most), not read per update
static bool
s_from_the_future (s_node_t *self, const herd_at_t *at)
{
    if (self->max_future == 0)
        return false;
    //  A time of more than 15 whole digits is simply far ahead
    const char *point = memchr (at->time.start, '.', at->time.size);
    size_t digits = point? (size_t) (point - at->time.start): at->time.size;
    return digits > 15 || s_whole_seconds (at->time) > self->future_after;
}

static int
s_funnel (s_node_t *self, const herd_at_t *at)
{
    if (s_from_the_future (self, at))
        return HERD_STORE_FUTURE;
    if (!at->gone && s_expired (self, at->time)) {
        self->refused_expired++;
        return HERD_STORE_EXPIRED;
    }
    bool held = false;
    if (at->gone) {
        char client [HERD_CLIENT_ID_MAX + 1];
        memcpy (client, at->client.start, at->client.size);
        client [at->client.size] = 0;
        held = herd_store_lookup (self->store, client, NULL) != NULL;
    }
    int stored = herd_store_offer (self->store, at);
    if (stored == HERD_STORE_STORED) {
        if (self->journal)
            herd_journal_append (self->journal, at->line.start, at->line.size);
        herd_bus_publish (self->bus, at);
        if (self->feed)
            herd_feed_publish (self->feed, at);
        if (at->gone) {
            self->forgets++;
            //  The forgotten location is in the journal still: a rewrite
            //  takes it off the disk within herd/forget_rewrite
            if (held && self->journal)
                herd_journal_rewrite_by (self->journal, zclock_mono () + self->forget_rewrite);
        }
    }
    return stored;
}

//  Expiry's judge, for every client the sweep visits: a location older
//  than herd/client_ttl goes (its GONE line on the feed), and a tombstone
//  past herd/tombstone_ttl, counted from when its forget was made (client
//  time + skew: the same moment on every server)
typedef struct {
    s_node_t *node;
    double now;
    bool removed_location;
} s_sweep_t;

static bool
s_judge (const char *client, const char *line, size_t size, void *arg)
{
    s_sweep_t *sweep = (s_sweep_t *) arg;
    s_node_t *self = sweep->node;
    herd_at_t at;
    if (herd_protocol_parse_at (line, size, &at))
        return false;
    if (at.gone) {
        if (s_seconds (at.time) + s_seconds (at.skew) >= sweep->now - self->tombstone_ttl)
            return false;
        self->tombstones_dropped++;
        return true;
    }
    if (!s_expired (self, at.time))
        return false;
    self->expired++;
    sweep->removed_location = true;
    if (self->feed) {
        //  One message on the feed, as a forget: GONE at the client's time
        char gone [HERD_CLIENT_ID_MAX + HERD_SERVER_NAME_MAX + 128];
        struct timespec receipt;
        clock_gettime (CLOCK_REALTIME, &receipt);
        herd_at_t expiry;
        herd_field_t id = { client, strlen (client) };
        if (herd_protocol_format_gone (gone, sizeof gone, self->server, &receipt, id, at.time, &expiry) > 0)
            herd_feed_publish (self->feed, &expiry);
    }
    return true;
}

//  Every HERD_SWEEP_INTERVAL msecs, for at most HERD_SWEEP_USECS: a slice
//  of the store's slots judged, so expiring a million clients never
//  holds up the others
static int
s_sweep (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_node_t *self = (s_node_t *) arg;
    s_tick (self);
    if (!self->client_ttl && herd_store_tombstones (self->store) == 0)
        return 0;
    s_sweep_t sweep = { self, zclock_time () / 1000.0, false };
    int64_t started = zclock_usecs ();
    size_t slots = herd_store_slots (self->store);
    for (size_t visited = 0; visited < slots && zclock_usecs () - started < HERD_SWEEP_USECS; visited += 256)
        herd_store_sweep (self->store, &self->sweep_cursor, 256, s_judge, &sweep);
    if (sweep.removed_location && self->journal)
        herd_journal_rewrite_by (self->journal, zclock_mono () + self->forget_rewrite);
    return 0;
}

//  Once an hour and at start: rotated log files (NAME.log.*) older than
//  herd/log_retention days are deleted: the traffic log holds clients'
//  locations, and keeps them no longer than that
static int
s_prune_logs (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_node_t *self = (s_node_t *) arg;
    long days = self->log_retention;
    const char *folder_path = herd_config_string (self->config, "herd/log_dir");
    DIR *folder = days? opendir (folder_path): NULL;
    if (!folder)
        return 0;
    char *prefix = zsys_sprintf ("%s.log.", self->server);
    time_t oldest = time (NULL) - days * 86400;
    struct dirent *entry;
    while ((entry = readdir (folder))) {
        if (strncmp (entry->d_name, prefix, strlen (prefix)))
            continue;
        char *path = zsys_sprintf ("%s/%s", folder_path, entry->d_name);
        struct stat status;
        if (stat (path, &status) == 0 && S_ISREG (status.st_mode) && status.st_mtime < oldest) {
            if (unlink (path) == 0)
                zsys_info ("log: deleted %s, older than %ld days (herd/log_retention)", path, days);
            else
                zsys_warning ("log: cannot delete %s: %s", path, strerror (errno));
        }
        freen (path);
    }
    closedir (folder);
    freen (prefix);
    return 0;
}

//  From the frontend: a client's IAMAT. While the journal cannot write,
//  nothing a client sends is taken: an AT would promise what we cannot
//  keep. Neighbours' updates still are (nobody waits on them, and the
//  rewrite that ends the failure writes the whole store).
static int
s_accept_from_client (const herd_at_t *at, void *arg)
{
    s_node_t *self = (s_node_t *) arg;
    if (self->journal && !herd_journal_writable (self->journal)) {
        return HERD_STORE_UNWRITABLE;
    }
    return s_funnel (self, at);
}

//  From a peer: its stream or its snapshot. Not written at once: nobody
//  waits on a neighbour's update, and what a crash loses of it the next
//  catch-up brings back. The next reply or the one-second timer writes it.
static int
s_accept_from_peer (herd_peer_t *peer, const char *line, size_t size, bool caught_up, void *arg)
{
    s_node_t *self = (s_node_t *) arg;
    //  Newer-wins first: most of what neighbours send is an echo of what
    //  we hold (each server hears an update from every neighbour that
    //  stored it), and an echo costs a lookup, not a parse
    herd_at_t parsed, *at = &parsed;
    if (herd_protocol_peek_at (line, size, at))
        return HERD_STORE_INVALID;
    if (!herd_store_newer (self->store, at->client, at->time, line, size))
        return HERD_STORE_STALE;
    if (herd_protocol_check_peeked (at))
        return HERD_STORE_INVALID;
    //  Every AT line is made by a server of the herd: one naming another
    //  is forged (a neighbour can only relay what the herd's servers made)
    char server [HERD_SERVER_NAME_MAX + 1];
    bool known = at->server.size <= HERD_SERVER_NAME_MAX;
    if (known) {
        memcpy (server, at->server.start, at->server.size);
        server [at->server.size] = 0;
        known = herd_config_has_server (self->config, server);
    }
    if (!known) {
        self->unknown_server++;
        char sample [200];
        herd_ratelimit_log (self->log, herd_peer_name (peer), LOG_WARNING,
                            "bus: refused an update from %s naming no server of this herd: %s",
                            herd_peer_name (peer), herd_log_sample (line, size, sample, sizeof sample));
        return HERD_STORE_UNKNOWN_SERVER;
    }
    int stored = s_funnel (self, at);
    if (stored == HERD_STORE_FUTURE) {
        if (!self->dropped_future)
            zsys_warning ("bus: dropped an update from %s whose client time is more than %ld s ahead "
                          "of our clock: %.*s (counted in STATS from now on)", herd_peer_name (peer),
                          self->max_future, (int) at->line.size, at->line.start);
        self->dropped_future++;
    }
    if (stored == HERD_STORE_STORED) {
        if (caught_up)
            self->updates_caught_up++;
        else
            self->updates_in++;
    }
    return stored;
}

//  A client's location, unless forgotten or expired (the sweep may not
//  have come by yet: the rule holds from the second it is due)
static const char *
s_lookup (const char *client, herd_at_t *at, void *arg)
{
    s_node_t *self = (s_node_t *) arg;
    herd_at_t parsed;
    if (!at)
        at = &parsed;
    const char *line = herd_store_lookup (self->store, client, at);
    if (line && s_expired (self, at->time))
        return NULL;
    return line;
}

//  Group commit: what this loop pass accepted goes to the journal in one
//  write (one fdatasync under "always") before the replies leave, and to
//  the neighbours in one batch. -1 if the journal could not take it: the
//  frontend withdraws the pass's AT replies.
static int
s_commit (void *arg)
{
    s_node_t *self = (s_node_t *) arg;
    int rc = self->journal? herd_journal_flush (self->journal): 0;
    herd_bus_flush (self->bus);
    return rc;
}

//  --------------------------------------------------------------------------
//  Admin: STATE and STATS

//  The server's state as JSON text: for operators and tests. Caller frees.
static char *
s_state (s_node_t *self)
{
    char digest [24];
    snprintf (digest, sizeof digest, "%016" PRIx64, herd_store_digest (self->store));
    //  What the server holds and how its links stand; its counters are
    //  STATS's (core/herd_counters), never repeated here
    json_t *state = json_pack ("{s:s, s:I, s:I, s:b, s:s, s:b, s:o, s:o}",
        "server", self->server,
        "clients", (json_int_t) (herd_store_size (self->store) - herd_store_tombstones (self->store)),
        "tombstones", (json_int_t) herd_store_tombstones (self->store),
        "store_full", herd_store_full (self->store),
        "digest", digest,
        "caught_up", herd_bus_caught_up (self->bus),
        "links", herd_bus_links (self->bus),
        "catch_up", herd_bus_catch_ups (self->bus));
    char *text = json_dumps (state, JSON_COMPACT);
    json_decref (state);
    return text;
}

//  Once a second: HTTP connections past their time end, whoever comes
static int
s_sweep_http (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_node_t *self = (s_node_t *) arg;
    if (self->http)
        herd_http_sweep (self->http);
    return 0;
}

//  The server's counters as JSON text, with the places broker's (NULL if
//  it did not answer): each class puts its own (core/herd_counters), the
//  node those it counts and the levels it reads. Caller frees.
static char *
s_stats (s_node_t *self, const char *places_json, size_t places_size)
{
    json_t *stats = places_json? json_loadb (places_json, places_size, 0, NULL): NULL;
    if (!json_is_object (stats)) {
        json_decref (stats);
        stats = json_object ();
    }
    json_object_set_new (stats, "server", json_string (self->server));
    herd_counters_put (stats, HERD_COUNTER_UPTIME, (zclock_mono () - self->started) / 1000);
    herd_places_asker_stats (self->places, stats);
    herd_frontend_stats (self->frontend, stats);
    herd_counters_put (stats, HERD_COUNTER_UPDATES_IN, self->updates_in);
    herd_counters_put (stats, HERD_COUNTER_UPDATES_FROM_CATCH_UP, self->updates_caught_up);
    herd_counters_put (stats, HERD_COUNTER_UPDATES_DROPPED_FUTURE, self->dropped_future);
    herd_counters_put (stats, HERD_COUNTER_LOG_SUPPRESSED, herd_ratelimit_suppressed_total ());
    herd_counters_put_keyed (stats, HERD_COUNTER_UPDATES_REFUSED, "unknown_server", self->unknown_server);
    herd_counters_put_keyed (stats, HERD_COUNTER_UPDATES_REFUSED, "wrong_sender",
                             herd_bus_wrong_sender (self->bus));
    herd_counters_put (stats, HERD_COUNTER_UPDATES_OUT, herd_bus_published (self->bus));
    herd_counters_put (stats, HERD_COUNTER_UPDATES_BATCHES_OUT, herd_bus_batches (self->bus));
    herd_counters_put (stats, HERD_COUNTER_UPDATES_HEARD, herd_bus_heard (self->bus));
    herd_counters_put (stats, HERD_COUNTER_BUS_REBINDS, herd_bus_rebinds (self->bus));
    herd_feed_stats (self->feed, stats);
    herd_keys_stats (self->keys, stats);
    herd_counters_put (stats, HERD_COUNTER_CLIENTS_STORED,
                       herd_store_size (self->store) - herd_store_tombstones (self->store));
    herd_counters_put_json (stats, HERD_COUNTER_STORE_FULL, json_boolean (herd_store_full (self->store)));
    herd_counters_put (stats, HERD_COUNTER_STORE_EVICTED, herd_store_evicted (self->store));
    herd_counters_put (stats, HERD_COUNTER_STORE_REFUSED_OLDER, herd_store_refused (self->store));
    herd_counters_put (stats, HERD_COUNTER_FORGETS, self->forgets);
    herd_counters_put (stats, HERD_COUNTER_EXPIRED, self->expired);
    herd_counters_put (stats, HERD_COUNTER_TOMBSTONES, herd_store_tombstones (self->store));
    herd_counters_put (stats, HERD_COUNTER_TOMBSTONES_DROPPED, self->tombstones_dropped);
    herd_counters_put (stats, HERD_COUNTER_REFUSED_EXPIRED, self->refused_expired);
    if (self->journal)
        herd_journal_stats (self->journal, stats);
    else
        json_object_set_new (stats, "journal", json_pack ("{s:s}", "state", "off"));
    herd_snapshot_stats (self->snapshot, stats);
    char *text = json_dumps (stats, JSON_COMPACT);
    json_decref (stats);
    return text;
}

//  An operator's forget (herd --forget NAME CLIENT): the client is
//  forgotten at now, or at its newest held time if that is later, on
//  this server and, by the flood, on every other. Only a server's key may
//  ask (the certificate's name is one of the herd's servers): a monitor
//  reads, it does not erase. The answer as JSON text; caller frees.
static char *
s_admin_forget (s_node_t *self, const char *client, const char *asker)
{
    if (herd_keys_secure (self->keys) && !(asker && herd_config_has_server (self->config, asker))) {
        zsys_warning ("admin: refused a FORGET from %s: only a server's key may forget",
                      asker? asker: "a key with no name");
        return strdup ("{\"error\": \"FORGET takes a server's key (herd --forget NAME CLIENT, as NAME)\"}");
    }
    char text [HERD_CLIENT_ID_MAX + 64];
    snprintf (text, sizeof text, "FORGET %s 0", client);
    herd_command_t command;
    herd_protocol_parse (text, strlen (text), &command);
    if (command.kind != HERD_LINE_FORGET)
        return strdup ("{\"error\": \"not a client id\"}");
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    char when [48];
    snprintf (when, sizeof when, "%lld.%09ld", (long long) now.tv_sec, now.tv_nsec);
    herd_field_t time = { when, strlen (when) };
    const char *held = herd_store_held (self->store, client);
    if (held) {
        herd_field_t held_time = herd_protocol_at_time (held, strlen (held));
        if (herd_protocol_time_compare (held_time, time) > 0 && held_time.size < sizeof when) {
            memcpy (when, held_time.start, held_time.size);
            when [held_time.size] = 0;
            time.size = held_time.size;
        }
    }
    char line [HERD_CLIENT_ID_MAX + HERD_SERVER_NAME_MAX + 128];
    herd_at_t gone;
    if (herd_protocol_format_gone (line, sizeof line, self->server, &now, command.client, time, &gone) < 0)
        return strdup ("{\"error\": \"client id too long\"}");
    int stored = s_funnel (self, &gone);
    if (s_commit (self) == -1 || (stored != HERD_STORE_STORED && stored != HERD_STORE_STALE)) {
        json_t *answer = json_pack ("{s:s, s:s}", "error", "the forget could not be kept (journal or store)",
                                    "line", line);
        char *reply = json_dumps (answer, JSON_COMPACT);
        json_decref (answer);
        return reply;
    }
    zsys_notice ("admin: %s forgot %s: %s", asker? asker: "an operator", client, line);
    json_t *answer = json_pack ("{s:s, s:s}", "forgot", client, "line", line);
    char *reply = json_dumps (answer, JSON_COMPACT);
    json_decref (answer);
    return reply;
}

//  Clients a CLIENTS page holds at most: a reply stays well under a MiB
#define S_PAGE_MAX  1000

static int
s_page_line (const char *line, size_t size, void *arg)
{
    json_array_append_new ((json_t *) arg, json_stringn (line, size));
    return 0;
}

//  CLIENTS <cursor> [<count>]: a page of the store, as Redis's SCAN: the
//  lines held (AT, and GONE for forgotten clients) from cursor on, and the
//  cursor to ask with next, 0 once the walk is done. A client held from
//  the first page to the last is in exactly one page.
static char *
s_admin_clients (s_node_t *self, const char *arguments)
{
    unsigned long long cursor = 0, count = 100;
    if (sscanf (arguments, "%llu %llu", &cursor, &count) < 1 || count == 0)
        return strdup ("{\"error\": \"CLIENTS <cursor> [<count>]: start at 0\"}");
    if (count > S_PAGE_MAX)
        count = S_PAGE_MAX;
    json_t *lines = json_array ();
    size_t next = (size_t) cursor;
    herd_store_scan (self->store, &next, (size_t) count, s_page_line, lines);
    if (next >= herd_store_slots (self->store))
        next = 0;
    json_t *answer = json_pack ("{s:I, s:o}", "cursor", (json_int_t) next, "clients", lines);
    char *reply = json_dumps (answer, JSON_COMPACT);
    json_decref (answer);
    return reply;
}

//  CLIENT <id>: the line held for one client, AT or GONE, or null
static char *
s_admin_client (s_node_t *self, const char *client)
{
    const char *line = herd_store_held (self->store, client);
    json_t *answer = json_pack ("{s:s, s:s?}", "client", client, "line", line);
    char *reply = json_dumps (answer, JSON_COMPACT);
    json_decref (answer);
    return reply;
}

//  Admin requests: [asker][request] -> [asker][JSON]
static int
s_handle_admin (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_node_t *self = (s_node_t *) arg;
    zmsg_t *message = zmsg_recv (reader);
    if (!message)
        return 0;
    zframe_t *asker = zmsg_pop (message);
    zframe_t *request_frame = zmsg_first (message);
    char *request = request_frame? zframe_strdup (request_frame): NULL;
    //  Who asks: the name in its public certificate (zauth hands the
    //  certificate's metadata with every message of a CURVE link)
    const char *name = request_frame? zframe_meta (request_frame, "name"): NULL;
    char *reply = NULL;
    if (request && !strncmp (request, "FORGET ", 7))
        reply = s_admin_forget (self, request + 7, name);
    else
    if (request && !strncmp (request, "CLIENTS ", 8))
        reply = s_admin_clients (self, request + 8);
    else
    if (request && !strncmp (request, "CLIENT ", 7))
        reply = s_admin_client (self, request + 7);
    else
    if (request && streq (request, "CONNECTIONS")) {
        json_t *answer = json_pack ("{s:o}", "connections", herd_frontend_connection_list (self->frontend));
        reply = json_dumps (answer, JSON_COMPACT);
        json_decref (answer);
    }
    else
    if (request && streq (request, "STATE"))
        reply = s_state (self);
    else
    if (request && streq (request, "STATS")) {
        //  The places counters live in the broker's thread: ask it under a
        //  request id of ours, and answer when it does (s_handle_counts).
        //  Past a bound of askers, or if it does not take the question,
        //  the answer goes without them.
        char key [24];
        snprintf (key, sizeof key, "%" PRIu64, ++self->next_stats_request);
        if (zhashx_size (self->stats_askers) < S_STATS_ASKERS_MAX
        &&  herd_places_asker_ask_stats (self->places, self->next_stats_request) == 0) {
            zhashx_insert (self->stats_askers, key, asker);
            asker = NULL;       //  The table holds it now
        }
        else
            reply = s_stats (self, NULL, 0);
    }
    else
        reply = strdup ("{\"error\": \"unknown request; try STATE, STATS, CLIENTS <cursor> [<count>], "
                        "CLIENT <id>, CONNECTIONS or FORGET <client>\"}");
    if (reply)
        zsock_send (reader, "fs", asker, reply);
    freen (reply);
    freen (request);
    zframe_destroy (&asker);
    zmsg_destroy (&message);
    return 0;
}

static void
s_asker_destroy (void **item_p)
{
    zframe_destroy ((zframe_t **) item_p);
}

//  The places broker's counters, for the STATS asker waiting on them
static void
s_handle_counts (uint64_t request, const char *counts, size_t size, void *arg)
{
    s_node_t *self = (s_node_t *) arg;
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, request);
    zframe_t *asker = (zframe_t *) zhashx_lookup (self->stats_askers, key);
    if (!asker)
        return;
    char *stats = s_stats (self, counts, size);
    zsock_send (self->admin, "fs", asker, stats);
    herd_reader_check (self->admin_reader);
    freen (stats);
    zhashx_delete (self->stats_askers, key);
}

//  --------------------------------------------------------------------------
//  Start and stop

static int
s_start (s_node_t *self, char **error_p)
{
    //  Keys first: a server without them must not start at all
    self->keys = herd_keys_new (self->config, self->server, error_p);
    if (!self->keys)
        return -1;
    if (herd_keys_secure (self->keys)) {
        //  zauth answers the ZAP requests of every CURVE server socket in
        //  this process: only certificates in the allowed folder get in
        self->auth = zactor_new (zauth, NULL);
        zstr_sendx (self->auth, "CURVE", herd_keys_allowed (self->keys), NULL);
        zsock_wait (self->auth);
        zsys_info ("security: CURVE on the bus, feed, sync and admin links; admitting the keys in %s/",
                   herd_keys_allowed (self->keys));
    }
    else
        zsys_warning ("security: OFF (herd/security = off): the bus, feed, sync and admin links are plain; "
                      "anyone who reaches them can read and forge locations");
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
        herd_journal_set_rewrite_min (self->journal,
                                      (size_t) herd_config_number (self->config, "herd/journal_rewrite_min"));
        herd_journal_attach (self->journal, self->loop, self->store);
    }
    self->snapshot = herd_snapshot_new (self->config, self->server, self->store, self->keys, error_p);
    if (!self->snapshot)
        return -1;
    self->bus = herd_bus_new (self->config, self->server, self->keys, error_p);
    if (!self->bus)
        return -1;
    herd_bus_set_traffic (self->bus, self->traffic);
    const char *feed = herd_config_server_endpoint (self->config, self->server, "feed_bind");
    if (feed) {
        self->feed = herd_feed_new (feed, self->config, self->keys, error_p);
        if (!self->feed) {
            char *error = *error_p;
            *error_p = zsys_sprintf ("%s (servers/%s/feed in %s)", error, self->server,
                                     herd_config_filename (self->config));
            freen (error);
            return -1;
        }
        herd_feed_attach (self->feed, self->loop);
    }
    herd_snapshot_attach (self->snapshot, self->loop);
    herd_bus_attach (self->bus, self->loop, s_accept_from_peer, self);
    herd_bus_set_store (self->bus, self->store);
    if (!herd_bus_caught_up (self->bus))
        zsys_info ("sync: not caught up yet: waiting for a neighbour's snapshot");
    //  The admin ROUTER answers operators (tcp, if configured, CURVE) and
    //  this process's own HTTP thread (inproc, which ZeroMQ never secures)
    const char *admin = herd_config_server_endpoint (self->config, self->server, "admin");
    self->admin = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (self->admin, 0);
    zsock_set_rcvtimeo (self->admin, HERD_LOOP_RCVTIMEO);
    zsock_set_maxmsgsize (self->admin, HERD_REQUEST_MAXMSGSIZE);
    //  Servers and monitors may ask; nobody else (zauth, domain "admin")
    herd_keys_apply_server (self->keys, self->admin, "admin");
    if (admin && zsock_bind (self->admin, "%s", admin) == -1) {
        *error_p = zsys_sprintf ("cannot bind admin endpoint %s (servers/%s/admin in %s): %s", admin,
                                 self->server, herd_config_filename (self->config), zmq_strerror (zmq_errno ()));
        return -1;
    }
    char *inproc = zsys_sprintf ("inproc://herd-admin-%s", self->server);
    int rc = zsock_bind (self->admin, "%s", inproc);
    assert (rc == 0);
    self->admin_reader = herd_reader_new (self->loop, self->admin, s_handle_admin, self);
    if (admin)
        herd_keys_watch (self->keys, self->loop, self->admin, "admin", NULL, NULL);
    //  Its queue holds a WHATSAT for every client, and STATS askers beside
    self->places = herd_places_asker_new (self->loop, self->server,
                                           herd_config_number (self->config, "herd/max_clients") + 1000);
    herd_places_asker_on_counts (self->places, s_handle_counts, self);
    if (self->offline)
        herd_places_asker_answer_from (self->places, self->offline);
    self->stats_askers = zhashx_new ();
    zhashx_set_destructor (self->stats_askers, s_asker_destroy);
    if (admin)
        zsys_info ("admin: answering state requests on %s", admin);
    const char *http = herd_config_server_endpoint (self->config, self->server, "http");
    if (http)
        self->http = herd_http_new (self->server, http, inproc, error_p);
    if (self->http)
        zloop_timer (self->loop, 1000, 0, s_sweep_http, self);
    //  Forgetting: expiry and old tombstones in slices, old logs hourly
    zloop_timer (self->loop, HERD_SWEEP_INTERVAL, 0, s_sweep, self);
    s_prune_logs (self->loop, 0, self);
    zloop_timer (self->loop, 3600 * 1000, 0, s_prune_logs, self);
    if (self->client_ttl)
        zsys_info ("forget: clients expire %ld s after their newest client time (herd/client_ttl)",
                   self->client_ttl);
    freen (inproc);
    if (http && !self->http) {
        char *error = *error_p;
        *error_p = zsys_sprintf ("%s (servers/%s/http in %s)", error, self->server,
                                 herd_config_filename (self->config));
        freen (error);
        return -1;
    }
    //  Clients last: once the port takes connections the node is whole,
    //  so nobody who sees it listening can catch it half started
    herd_frontend_node_t calls = { s_accept_from_client, s_lookup, s_commit, self, self->traffic, self->places };
    self->frontend = herd_frontend_new (self->config, self->server, self->loop, &calls, error_p);
    if (!self->frontend)
        return -1;
    return 0;
}

//  What SIGHUP may change while the server runs; every other setting
//  takes effect at the next start (and the log says so)
static const char *s_reloadable [] = {
    "herd/log_level", "herd/log_format",            //  main applies these
    "herd/log_traffic", "herd/max_pending", "herd/max_clients", "herd/max_output_total",
    "herd/idle_timeout", "herd/first_line_timeout", "herd/max_per_address", "herd/max_future",
    "herd/client_ttl", "herd/tombstone_ttl", "herd/forget_rewrite", "herd/log_retention", NULL
};

static bool
s_is_reloadable (const char *path)
{
    for (size_t index = 0; s_reloadable [index]; index++)
        if (streq (s_reloadable [index], path))
            return true;
    return false;
}

//  SIGHUP: the TLS port's certificates and CRL read again, and what the
//  config file says now (fresh, or NULL if it did not load) applied where
//  it can be: the client limits, the traffic log, forgetting's settings.
//  One log line says what was applied, one what waits for a restart.
static void
s_reload (s_node_t *self, herd_config_t *fresh)
{
    char *error = NULL;
    if (self->frontend && herd_frontend_reload (self->frontend, &error)) {
        zsys_error ("SIGHUP: %s; the TLS port keeps its certificates", error);
        freen (error);
    }
    if (!fresh)
        return;
    zlistx_t *changes = herd_config_changes (self->config, fresh);
    char *applied = strdup (""), *waiting = strdup ("");
    for (const char *path = (const char *) zlistx_first (changes); path;
         path = (const char *) zlistx_next (changes)) {
        char **list = s_is_reloadable (path)? &applied: &waiting;
        char *longer = zsys_sprintf ("%s%s%s", *list, **list? ", ": "", path);
        freen (*list);
        *list = longer;
    }
    zlistx_destroy (&changes);
    if (self->frontend)
        herd_frontend_set_limits (self->frontend, fresh);
    self->max_future = herd_config_number (fresh, "herd/max_future");
    self->client_ttl = herd_config_number (fresh, "herd/client_ttl");
    s_tick (self);
    self->tombstone_ttl = herd_config_number (fresh, "herd/tombstone_ttl");
    self->forget_rewrite = herd_config_number (fresh, "herd/forget_rewrite") * 1000;
    self->log_retention = herd_config_number (fresh, "herd/log_retention");
    bool traffic = herd_config_number (fresh, "herd/log_traffic") != 0;
    if (traffic != (self->traffic != NULL)) {
        if (self->traffic)
            herd_traffic_flush (self->traffic);
        herd_traffic_t *old = self->traffic;
        self->traffic = traffic? herd_traffic_new (self->server): NULL;
        herd_bus_set_traffic (self->bus, self->traffic);
        if (self->frontend)
            herd_frontend_set_traffic (self->frontend, self->traffic);
        herd_traffic_destroy (&old);
    }
    if (*applied)
        zsys_notice ("SIGHUP: %s: applied %s", herd_config_filename (fresh), applied);
    if (*waiting)
        zsys_warning ("SIGHUP: %s: these changed and take effect at the next restart: %s",
                      herd_config_filename (fresh), waiting);
    if (!*applied && !*waiting)
        zsys_info ("SIGHUP: %s: no setting changed", herd_config_filename (fresh));
    freen (applied);
    freen (waiting);
}

static int
s_handle_pipe (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_node_t *self = (s_node_t *) arg;
    char *command = zstr_recv (reader);
    if (!command || streq (command, "$TERM")) {
        freen (command);
        return -1;
    }
    if (streq (command, "START")) {
        char *error = NULL;
        int started = s_start (self, &error);
        herd_actor_started (reader, started, error);
        freen (error);
    }
    else
    if (streq (command, "PORT"))
        zstr_sendf (reader, "%d", self->frontend? herd_frontend_port (self->frontend): 0);
    else
    if (streq (command, "HTTP PORT"))
        zstr_sendf (reader, "%d", self->http? herd_http_port (self->http): 0);
    else
    if (streq (command, "TLS PORT"))
        zstr_sendf (reader, "%d", self->frontend? herd_frontend_tls_port (self->frontend): 0);
    else
    if (streq (command, "RELOAD")) {
        //  SIGHUP: [config read again, or NULL] -> signal when applied
        herd_config_t *fresh = NULL;
        zsock_recv (reader, "p", &fresh);
        s_reload (self, fresh);
        zsock_signal (reader, 0);
    }
    else {
        zsys_error ("node: unknown command %s", command);
        assert (false);
    }
    freen (command);
    return 0;
}

void
herd_node_actor (zsock_t *pipe, void *args)
{
    herd_node_args_t *node_args = (herd_node_args_t *) args;
    herd_actor_name ("herd-node");
    s_node_t self_data = { 0 }, *self = &self_data;
    self->pipe = pipe;
    self->config = node_args->config;
    self->server = strdup (node_args->server);
    self->offline = node_args->offline;
    self->store = herd_store_new (herd_config_number (self->config, "herd/max_stored"));
    self->max_future = herd_config_number (self->config, "herd/max_future");
    self->client_ttl = herd_config_number (self->config, "herd/client_ttl");
    s_tick (self);
    self->tombstone_ttl = herd_config_number (self->config, "herd/tombstone_ttl");
    self->forget_rewrite = herd_config_number (self->config, "herd/forget_rewrite") * 1000;
    self->log_retention = herd_config_number (self->config, "herd/log_retention");
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    if (herd_config_number (self->config, "herd/log_traffic"))
        self->traffic = herd_traffic_new (self->server);
    self->started = zclock_mono ();
    self->loop = zloop_new ();
    //  Signals stop the process through main, which sends us $TERM
    zloop_set_nonstop (self->loop, true);
    self->pipe_reader = herd_reader_new (self->loop, pipe, s_handle_pipe, self);
    zsock_signal (pipe, 0);

    zloop_start (self->loop);
    //  Readers retired in the loop's last second
    herd_reader_collect ();

    herd_frontend_destroy (&self->frontend);
    //  Its thread asks the admin socket: it goes first
    herd_http_destroy (&self->http);
    zsys_info ("node: stopped; %zu clients stored", herd_store_size (self->store));
    herd_journal_destroy (&self->journal);
    //  The handshake monitors before the sockets they watch; every reader
    //  before the loop it reads in
    herd_keys_destroy (&self->keys);
    zactor_destroy (&self->auth);
    herd_places_asker_destroy (&self->places);
    zhashx_destroy (&self->stats_askers);
    herd_reader_destroy (&self->admin_reader);
    zsock_destroy (&self->admin);
    herd_feed_destroy (&self->feed);
    herd_bus_destroy (&self->bus);
    herd_snapshot_destroy (&self->snapshot);
    herd_reader_destroy (&self->pipe_reader);
    zloop_destroy (&self->loop);
    herd_store_destroy (&self->store);
    herd_ratelimit_destroy (&self->log);
    herd_traffic_destroy (&self->traffic);
    freen (self->server);
}

//  --------------------------------------------------------------------------
//  Selftest: one server on a free port, one TCP client, one admin asker

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
herd_node_test (bool verbose)
{
    printf (" * herd_node: ");
    if (verbose)
        printf ("\n");
    char *text = zsys_sprintf (
        "herd\n    log_traffic = %d\n    max_line = 100\n    data_dir = /tmp/herd-node-test-%d\n"
        "    security = off\n"
        "places\n    provider = none\n    workers = 1\n"
        "    google\n        key_env = HERD_TEST_NO_SUCH_KEY\n"
        "servers\n    T\n        client = 127.0.0.1:0\n"
        "        bus = inproc://herd-node-test\n"
        "        admin = inproc://herd-node-test-admin\n", verbose, getpid ());
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "node-test", &error);
    freen (text);
    assert (config);
    herd_places_args_t places_args = { config, "T", NULL };
    zactor_t *places = zactor_new (herd_places_actor, &places_args);
    assert (herd_actor_start (places, &error) == 0);
    herd_node_args_t node_args = { config, "T", places_args.offline };
    zactor_t *node = zactor_new (herd_node_actor, &node_args);
    assert (herd_actor_start (node, &error) == 0);
    zstr_send (node, "PORT");
    char *reply = zstr_recv (node);
    int port = atoi (reply);
    freen (reply);
    assert (port > 0);

    int fd = herd_loop_connect (port);
    struct timeval timeout = { 5, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
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

    //  The admin endpoint: STATE, STATS (with the broker's counters), and
    //  anything else is answered with an error
    zsock_t *admin = zsock_new_dealer ("inproc://herd-node-test-admin");
    zsock_set_rcvtimeo (admin, 5000);
    zstr_send (admin, "STATE");
    reply = zstr_recv (admin);
    json_t *state = json_loads (reply, 0, NULL);
    assert (state);
    assert (json_integer_value (json_object_get (state, "clients")) == 1);
    assert (json_is_true (json_object_get (state, "caught_up")));     //  No neighbours
    json_decref (state);
    freen (reply);
    zstr_send (admin, "STATS");
    reply = zstr_recv (admin);
    json_t *stats = json_loads (reply, 0, NULL);
    assert (stats);
    assert (json_integer_value (json_object_get (json_object_get (stats, "commands"), "IAMAT")) == 1);
    assert (json_integer_value (json_object_get (stats, "bad_lines")) == 1);
    assert (json_is_integer (json_object_get (stats, "connections_evicted")));
    assert (json_is_false (json_object_get (json_object_get (stats, "store"), "full")));
    assert (json_is_integer (json_object_get (json_object_get (stats, "updates"), "batches_out")));
    assert (json_is_integer (json_object_get (json_object_get (stats, "feed"), "subscriptions")));
    assert (json_integer_value (json_object_get (json_object_get (stats, "updates"), "out")) == 1);
    assert (json_object_get (json_object_get (stats, "places"), "requests"));
    //  Every counter of the one table is in STATS, from the class that keeps it
    for (int id = 0; id < HERD_COUNTER_COUNT; id++)
        assert (herd_counters_get (stats, (herd_counter_t) id));
    json_decref (stats);
    freen (reply);
    zstr_send (admin, "HELLO");
    reply = zstr_recv (admin);
    assert (strstr (reply, "unknown request"));
    freen (reply);
    zsock_destroy (&admin);

    //  An over-long line is answered with its first 100 bytes, then closed
    char long_line [300];
    memset (long_line, 'x', sizeof long_line);
    long_line [sizeof long_line - 1] = '\n';
    assert (write (fd, long_line, sizeof long_line) == (ssize_t) sizeof long_line);
    size_t held = s_read_until (fd, buffer, sizeof buffer, "\n");
    assert (held == 2 + 100 + 1);
    assert (read (fd, buffer, sizeof buffer) == 0);      //  Closed
    close (fd);

    zactor_destroy (&node);
    zactor_destroy (&places);
    herd_config_destroy (&config);
    char *folder = zsys_sprintf ("/tmp/herd-node-test-%d", getpid ());
    char *journal = zsys_sprintf ("%s/T.journal", folder);
    unlink (journal);
    rmdir (folder);
    freen (journal);
    freen (folder);
    printf ("OK\n");
}
