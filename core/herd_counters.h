//  core/herd_counters.h: every number a server reports, defined once:
//  where it sits in STATS, its name in /metrics, its kind and its help.
//  Whoever counts writes STATS through it (no module spells a key),
//  /metrics is made from it, and herd-monitor reads STATS through it: a
//  counter cannot be in one and missing from another. Each event has one
//  counter, kept by the one class that sees it happen.

#ifndef HERD_COUNTERS_H_INCLUDED
#define HERD_COUNTERS_H_INCLUDED

typedef enum {
    HERD_COUNTER_KIND_COUNTER,      //  Only goes up
    HERD_COUNTER_KIND_GAUGE,        //  A level now
    HERD_COUNTER_KIND_HISTOGRAM     //  {"le_ms": [...], "counts": [cumulative], "sum_ms", "count"}
} herd_counter_kind_t;

//  X (id, STATS path, metric name, kind, help, label, scale): label names
//  the keys of an object of numbers (one sample each), else NULL; scale
//  turns the STATS unit into the metric's
#define HERD_COUNTERS(X) \
    X (UPTIME, "uptime_s", "herd_uptime_seconds", GAUGE, "Seconds since the server started", NULL, 1) \
    X (CONNECTIONS_OPEN, "connections_open", "herd_connections_open", GAUGE, \
       "Client connections open now", NULL, 1) \
    X (CONNECTIONS_TOTAL, "connections_total", "herd_connections_total", COUNTER, \
       "Client connections accepted", NULL, 1) \
    X (CONNECTIONS_REFUSED, "connections_refused", "herd_connections_refused_total", COUNTER, \
       "Connections refused at herd/max_clients", NULL, 1) \
    X (CONNECTIONS_REFUSED_PER_ADDRESS, "connections_refused_per_address", \
       "herd_connections_refused_per_address_total", COUNTER, \
       "Connections refused at herd/max_per_address", NULL, 1) \
    X (CONNECTIONS_IDLE_CLOSED, "connections_idle_closed", "herd_connections_idle_closed_total", COUNTER, \
       "Connections closed at herd/idle_timeout or herd/first_line_timeout", NULL, 1) \
    X (CONNECTIONS_EVICTED, "connections_evicted", "herd_connections_evicted_total", COUNTER, \
       "Connections closed to make room at herd/max_clients: no command yet first, then the idlest", NULL, 1) \
    X (CONNECTIONS_DROPPED_OUTPUT, "clients_dropped_output_total", "herd_connections_dropped_output_total", \
       COUNTER, "Connections dropped at herd/max_output_total", NULL, 1) \
    X (TLS_HANDSHAKES, "tls/handshakes", "herd_tls_handshakes_total", COUNTER, \
       "TLS handshakes completed on the client TLS port", NULL, 1) \
    X (TLS_HANDSHAKES_FAILED, "tls/handshakes_failed", "herd_tls_handshakes_failed_total", COUNTER, \
       "TLS handshakes refused or failed: certificate not valid, not TLS, cut", NULL, 1) \
    X (NOT_GRANTED, "not_granted", "herd_not_granted_total", COUNTER, \
       "Lines answered ? for naming a client id the connection's certificate does not grant", NULL, 1) \
    X (OUTPUT_BYTES, "output_bytes", "herd_output_bytes", GAUGE, "Reply bytes queued for all clients", NULL, 1) \
    X (COMMANDS, "commands", "herd_commands_total", COUNTER, "Client commands by kind", "kind", 1) \
    X (BAD_LINES, "bad_lines", "herd_bad_lines_total", COUNTER, "Client lines answered ?", NULL, 1) \
    X (ACKS_WITHDRAWN, "acks_withdrawn", "herd_acks_withdrawn_total", COUNTER, \
       "AT replies turned to ? because the journal could not write", NULL, 1) \
    X (IAMATS_REFUSED, "iamats_refused", "herd_iamats_refused_total", COUNTER, \
       "IAMATs answered ? by reason: store_full, future (client time), journal (cannot write)", "reason", 1) \
    X (CLIENTS_STORED, "clients_stored", "herd_clients_stored", GAUGE, "Clients in the store", NULL, 1) \
    X (STORE_FULL, "store/full", "herd_store_full", GAUGE, \
       "1 once the store holds herd/max_stored clients: it keeps the newest, evicting the oldest", NULL, 1) \
    X (STORE_EVICTED, "store/evicted", "herd_store_evicted_total", COUNTER, \
       "Clients evicted from a full store by newer ones", NULL, 1) \
    X (FORGETS, "forget/forgets", "herd_forgets_total", COUNTER, \
       "Forgets applied: FORGETs from clients and operators, and tombstones from neighbours", NULL, 1) \
    X (EXPIRED, "forget/expired", "herd_expired_total", COUNTER, \
       "Clients forgotten for a newest client time older than herd/client_ttl", NULL, 1) \
    X (TOMBSTONES, "forget/tombstones", "herd_tombstones", GAUGE, \
       "Tombstones held: forgotten clients whose older updates are kept out", NULL, 1) \
    X (TOMBSTONES_DROPPED, "forget/tombstones_dropped", "herd_tombstones_dropped_total", COUNTER, \
       "Tombstones dropped after herd/tombstone_ttl", NULL, 1) \
    X (REFUSED_EXPIRED, "forget/refused_expired", "herd_refused_expired_total", COUNTER, \
       "Updates refused for a client time older than herd/client_ttl", NULL, 1) \
    X (STORE_REFUSED_OLDER, "store/refused_older", "herd_store_refused_older_total", COUNTER, \
       "New clients a full store refused, being older than every client it holds", NULL, 1) \
    X (UPDATES_IN, "updates/in", "herd_updates_in_total", COUNTER, \
       "Updates stored from neighbours' streams", NULL, 1) \
    X (UPDATES_FROM_CATCH_UP, "updates/from_catch_up", "herd_updates_caught_up_total", COUNTER, \
       "Updates stored from neighbours' snapshots", NULL, 1) \
    X (UPDATES_OUT, "updates/out", "herd_updates_out_total", COUNTER, "Updates published on the bus", NULL, 1) \
    X (UPDATES_BATCHES_OUT, "updates/batches_out", "herd_bus_batches_out_total", COUNTER, \
       "Batches (bus messages) sent to neighbours", NULL, 1) \
    X (UPDATES_HEARD, "updates/heard", "herd_updates_heard_total", COUNTER, \
       "Updates heard on neighbours' streams, newer or not", NULL, 1) \
    X (UPDATES_REFUSED, "updates/refused", "herd_updates_refused_total", COUNTER, \
       "Neighbours' updates refused by reason: unknown_server (an AT line naming no server of the herd), " \
       "wrong_sender (a message headed with another server's name than its link's)", "reason", 1) \
    X (UPDATES_DROPPED_FUTURE, "updates/dropped_future", "herd_updates_dropped_future_total", COUNTER, \
       "Neighbours' updates dropped for a client time too far ahead", NULL, 1) \
    X (FEED_SUBSCRIPTIONS, "feed/subscriptions", "herd_feed_subscriptions", GAUGE, \
       "Prefixes subscribed on the update feed now", NULL, 1) \
    X (FEED_MONITORS, "feed/monitors", "herd_feed_monitors", GAUGE, \
       "Monitor connections to the update feed now (bus/feed_max_monitors at most)", NULL, 1) \
    X (FEED_MONITORS_DROPPED, "feed/monitors_dropped", "herd_feed_monitors_dropped_total", COUNTER, \
       "Monitors dropped by reason: stalled (took nothing for bus/feed_max_stall while updates waited), " \
       "room (the slowest, past bus/feed_max_monitors)", "reason", 1) \
    X (FEED_SENT, "feed/sent", "herd_feed_sent_total", COUNTER, "Updates sent on the update feed", NULL, 1) \
    X (FEED_REFUSED, "feed/refused", "herd_feed_refused_total", COUNTER, \
       "Updates the feed's socket did not take (monitors too slow)", NULL, 1) \
    X (FEED_REBINDS, "feed/rebinds", "herd_feed_rebinds_total", COUNTER, \
       "Times the feed's subscriptions outgrew bus/feed_max_subscriptions and every monitor was dropped", \
       NULL, 1) \
    X (BUS_REBINDS, "bus/rebinds", "herd_bus_rebinds_total", COUNTER, \
       "Times the bus's subscriptions outgrew their bound and every neighbour was dropped", NULL, 1) \
    X (LOG_SUPPRESSED, "log_suppressed", "herd_log_lines_suppressed_total", COUNTER, \
       "Log lines a neighbour, client or monitor caused past its rate (HERD_LOG_BURST per 5 s), not written", \
       NULL, 1) \
    X (HANDSHAKES_REFUSED, "handshakes_refused", "herd_handshakes_refused_total", COUNTER, \
       "ZeroMQ handshakes refused (keys not admitted), by link", "domain", 1) \
    X (JOURNAL_BYTES, "journal/bytes", "herd_journal_bytes", GAUGE, "Bytes in the journal file", NULL, 1) \
    X (JOURNAL_SYNCS, "journal/syncs", "herd_journal_syncs_total", COUNTER, \
       "fdatasync calls on the journal", NULL, 1) \
    X (JOURNAL_SYNC_MAX, "journal/sync_usecs_max", "herd_journal_sync_seconds_max", GAUGE, \
       "The slowest background fdatasync seen", NULL, 1e-6) \
    X (JOURNAL_FAILURES, "journal/failures", "herd_journal_failures_total", COUNTER, \
       "Times the journal could not write", NULL, 1) \
    X (JOURNAL_REWRITING, "journal/rewriting", "herd_journal_rewriting", GAUGE, \
       "1 while a rewrite of the journal runs", NULL, 1) \
    X (SNAPSHOTS_GOING_OUT, "snapshots/going_out", "herd_snapshots_going_out", GAUGE, \
       "Snapshots being sent to neighbours", NULL, 1) \
    X (SNAPSHOTS_REFUSED, "snapshots/refused", "herd_snapshots_refused_total", COUNTER, \
       "SYNC requests refused at the bound on snapshots", NULL, 1) \
    X (SNAPSHOTS_REPLACED, "snapshots/replaced", "herd_snapshots_replaced_total", COUNTER, \
       "Snapshots ended by a newer SYNC from the same server", NULL, 1) \
    X (PLACES_REQUESTS, "places/requests", "herd_places_requests_total", COUNTER, \
       "WHATSAT places requests", NULL, 1) \
    X (PLACES_PROVIDER_ERRORS, "places/provider_errors", "herd_places_provider_errors_total", COUNTER, \
       "Places requests the provider failed", NULL, 1) \
    X (PLACES_CACHE_HITS, "places/cache_hits", "herd_places_cache_hits_total", COUNTER, \
       "Places answers from the cache", NULL, 1) \
    X (PLACES_CACHE_MISSES, "places/cache_misses", "herd_places_cache_misses_total", COUNTER, \
       "Places cache misses", NULL, 1) \
    X (PLACES_CACHE_EVICTIONS, "places/cache_evictions", "herd_places_cache_evictions_total", COUNTER, \
       "Places cache evictions", NULL, 1) \
    X (PLACES_CACHE_ENTRIES, "places/cache_entries", "herd_places_cache_entries", GAUGE, \
       "Places answers cached", NULL, 1) \
    X (PLACES_PROVIDER_LATENCY, "places/provider_latency", "herd_places_provider_seconds", HISTOGRAM, \
       "How long the places provider took to answer", NULL, 1e-3)

//  Metric names renamed in 0.2.0 (one word, one meaning), still exported
//  under their old names until the next release, marked deprecated in
//  their HELP: X (id, old metric name)
#define HERD_COUNTER_ALIASES(X) \
    X (UPDATES_HEARD, "herd_updates_received_total") \
    X (FEED_REBINDS, "herd_feed_rebuilt_total") \
    X (BUS_REBINDS, "herd_bus_rebuilt_total")

typedef enum {
#define HERD_COUNTER_ID(id, path, name, kind, help, label, scale) HERD_COUNTER_##id,
    HERD_COUNTERS (HERD_COUNTER_ID)
#undef HERD_COUNTER_ID
    HERD_COUNTER_COUNT
} herd_counter_t;

typedef struct {
    const char *path;           //  In STATS, keys from the top: "journal/syncs"
    const char *name;           //  In /metrics
    herd_counter_kind_t kind;
    const char *help;
    const char *label;          //  An object of numbers: its keys' label, else NULL
    double scale;               //  STATS unit to the metric's
} herd_counter_def_t;

//  A counter's definition
const herd_counter_def_t *
    herd_counters_def (herd_counter_t id);

//  Puts a number at a counter's path in stats (objects on the way made)
void
    herd_counters_put (json_t *stats, herd_counter_t id, uint64_t value);

//  The same for one key of a labelled counter ("commands", "IAMAT")
void
    herd_counters_put_keyed (json_t *stats, herd_counter_t id, const char *key, uint64_t value);

//  Puts a JSON value (a histogram, or a flag) at a counter's path; takes it
void
    herd_counters_put_json (json_t *stats, herd_counter_t id, json_t *value);

//  What stats holds for a counter (borrowed), or NULL
json_t *
    herd_counters_get (json_t *stats, herd_counter_t id);

//  Its number (key: one of a labelled counter's keys, else NULL); 0 if
//  absent
double
    herd_counters_value (json_t *stats, herd_counter_t id, const char *key);

void
    herd_counters_test (bool verbose);

#endif
