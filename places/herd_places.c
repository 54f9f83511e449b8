//  places/herd_places.c: the places broker actor.

#include "places/herd_places_layer.h"

//  Upper bounds of the provider latency histogram, in ms
#define S_LATENCY_BUCKETS 10
static const int64_t s_latency_bounds [S_LATENCY_BUCKETS] = { 1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000 };

//  A query waiting for, or at, a worker
typedef struct {
    uint64_t id;                //  Job id, unique in this broker
    zframe_t *asker;            //  The asker's routing id (owned)
    uint64_t request;           //  The asker's request id
    herd_query_t query;
    int64_t started;            //  When it reached us, for the log
    zlistx_t *followers;        //  Same question asked meanwhile (owned), or NULL
} s_job_t;

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    herd_config_t *config;      //  Borrowed
    char *server;               //  Our server's name
    zsock_t *frontend;          //  ROUTER for frontends' queries
    zsock_t *backend;           //  ROUTER for workers
    char *backend_endpoint;
    zlistx_t *workers;          //  zactor_t items (owned)
    zlistx_t *idle;             //  Idle workers' routing ids (zframe_t, owned)
    zlistx_t *queue;            //  s_job_t waiting for a worker (owned)
    zhashx_t *running;          //  job id text -> s_job_t at a worker (owned)
    zhashx_t *asked;            //  cache key -> the job asking it (borrowed):
                                //  the same question waits on that answer
    const char *provider;       //  "google", "offline" or "none"
    herd_offline_t *offline;    //  Offline data, if that is the provider (owned)
    zchunk_t *answer;           //  Its answers' text, made here (owned)
    herd_placecache_t *cache;   //  Answers by rounded location and radius (owned)
    size_t queue_max;           //  Bound on queue
    uint64_t next_id;
    bool log_traffic;
    uint64_t requests;          //  Counters, logged at exit
    uint64_t failures;
    //  How long the provider took, answer by answer: a histogram in the
    //  Prometheus way (counts per upper bound, cumulative when reported)
    uint64_t latency_counts [S_LATENCY_BUCKETS + 1];   //  The last: past every bound
    uint64_t latency_sum_us;
    uint64_t latency_count;
    herd_ratelimit_t *log;      //  Failures clients' WHATSATs make us log, limited (owned)
} s_places_t;

//  Records how long a provider answer took
static void
s_record_latency (s_places_t *self, int64_t msecs)
{
    size_t bucket = 0;
    while (bucket < S_LATENCY_BUCKETS && msecs > s_latency_bounds [bucket])
        bucket++;
    self->latency_counts [bucket]++;
    self->latency_sum_us += (uint64_t) msecs * 1000;
    self->latency_count++;
}

//  The histogram for STATS: {"le_ms": [...], "counts": [...cumulative],
//  "sum_ms", "count"}; the +Inf bucket is count
static json_t *
s_latency_json (s_places_t *self)
{
    json_t *bounds = json_array (), *counts = json_array ();
    uint64_t cumulative = 0;
    for (size_t bucket = 0; bucket < S_LATENCY_BUCKETS; bucket++) {
        cumulative += self->latency_counts [bucket];
        json_array_append_new (bounds, json_integer (s_latency_bounds [bucket]));
        json_array_append_new (counts, json_integer ((json_int_t) cumulative));
    }
    return json_pack ("{s:o, s:o, s:f, s:I}", "le_ms", bounds, "counts", counts,
                      "sum_ms", self->latency_sum_us / 1000.0, "count", (json_int_t) self->latency_count);
}

//  Cache key of a query to our provider, into buffer
static const char *
s_cache_key (s_places_t *self, const herd_query_t *query, char *buffer, size_t size)
{
    return herd_placecache_key (query, self->provider, buffer, size);
}

static void
s_job_destroy (void **item_p)
{
    s_job_t *job = (s_job_t *) *item_p;
    if (job) {
        zframe_destroy (&job->asker);
        zlistx_destroy (&job->followers);
        freen (job);
        *item_p = NULL;
    }
}

static void
s_frame_destroy (void **item_p)
{
    zframe_destroy ((zframe_t **) item_p);
}

static void
s_actor_destroy (void **item_p)
{
    zactor_destroy ((zactor_t **) item_p);
}

char *
herd_places_endpoint (const char *server)
{
    return zsys_sprintf ("inproc://herd-places-%s", server);
}

//  Logs the outcome, then sends the asker its answer (logged first: once
//  an asker holds an answer, the log says how it came); response stays
//  the caller's
static void
s_reply (s_places_t *self, s_job_t *job, json_t *response, const char *source)
{
    const char *status = herd_nearby_status (response);
    bool failed = streq (status, "UNKNOWN_ERROR");
    self->failures += failed;
    if (failed)
        herd_ratelimit_log (self->log, "provider", LOG_WARNING,
                            "places: %.6f,%.6f radius %.0f m: UNKNOWN_ERROR after %" PRId64 " ms: %s",
                            job->query.latitude, job->query.longitude, job->query.radius_m,
                            zclock_mono () - job->started,
                            json_string_value (json_object_get (response, "error_message")));
    else
    if (self->log_traffic)
        zsys_info ("places: %.6f,%.6f radius %.0f m: %s (%s), %zu results (%u sent) in %" PRId64 " ms",
                   job->query.latitude, job->query.longitude, job->query.radius_m, status, source,
                   herd_nearby_count (response),
                   (unsigned) (herd_nearby_count (response) < job->query.max_results?
                       herd_nearby_count (response): job->query.max_results),
                   zclock_mono () - job->started);
    //  The one place an answer becomes text
    char *text = herd_nearby_text (response, job->query.max_results);
    herd_places_msg_t answer = { .kind = HERD_PLACES_MSG_ANSWER, .id = job->request,
                                 .text = text, .text_size = strlen (text) };
    if (herd_places_msg_send (self->frontend, job->asker, &answer) == -1)
        zsys_warning ("places: an answer could not be sent back: %s", zmq_strerror (zmq_errno ()));
    freen (text);
}

static void
s_dispatch (s_places_t *self)
{
    while (zlistx_size (self->idle) && zlistx_size (self->queue)) {
        zframe_t *worker = (zframe_t *) zlistx_detach (self->idle, NULL);
        s_job_t *job = (s_job_t *) zlistx_detach (self->queue, NULL);
        herd_places_msg_t message = { .kind = HERD_PLACES_MSG_QUERY, .id = job->id, .query = job->query };
        herd_places_msg_send (self->backend, worker, &message);
        zframe_destroy (&worker);
        char key [24];
        snprintf (key, sizeof key, "%" PRIu64, job->id);
        zhashx_insert (self->running, key, job);
    }
}

static void
s_handle_query (s_places_t *self)
{
    zframe_t *asker = NULL, *frame = NULL;
    herd_places_msg_t message;
    herd_places_msg_kind_t kind = herd_places_msg_recv (self->frontend, &asker, &frame, &message);
    zframe_destroy (&frame);
    if (kind == HERD_PLACES_MSG_STATS) {
        //  Our part of the server's STATS, as the node merges it
        json_t *stats = json_object ();
        herd_counters_put (stats, HERD_COUNTER_PLACES_REQUESTS, self->requests);
        herd_counters_put (stats, HERD_COUNTER_PLACES_PROVIDER_ERRORS, self->failures);
        herd_placecache_t *cache = self->cache;     //  None: every count 0
        herd_counters_put (stats, HERD_COUNTER_PLACES_CACHE_HITS, cache? herd_placecache_hits (cache): 0);
        herd_counters_put (stats, HERD_COUNTER_PLACES_CACHE_MISSES, cache? herd_placecache_misses (cache): 0);
        herd_counters_put (stats, HERD_COUNTER_PLACES_CACHE_EVICTIONS, cache? herd_placecache_evictions (cache): 0);
        herd_counters_put (stats, HERD_COUNTER_PLACES_CACHE_ENTRIES, cache? herd_placecache_size (cache): 0);
        herd_counters_put_json (stats, HERD_COUNTER_PLACES_PROVIDER_LATENCY, s_latency_json (self));
        json_object_set_new (json_object_get (stats, "places"), "provider",
                             json_string (self->provider? self->provider: "none"));
        char *text = json_dumps (stats, JSON_COMPACT);
        herd_places_msg_t counts = { .kind = HERD_PLACES_MSG_COUNTS, .id = message.id,
                                     .text = text, .text_size = strlen (text) };
        herd_places_msg_send (self->frontend, asker, &counts);
        freen (text);
        json_decref (stats);
        zframe_destroy (&asker);
        return;
    }
    if (kind != HERD_PLACES_MSG_QUERY || !asker) {
        //  Only our own threads reach this socket: a bug, not an attack
        zsys_error ("places: a message from the server's loop that is no query (%s), dropped",
                    kind == HERD_PLACES_MSG_INVALID? message.reason: "another kind");
        zframe_destroy (&asker);
        return;
    }
    self->requests++;
    if (self->offline) {
        //  From memory, in microseconds: no job, no worker, no cache
        herd_offline_answer (self->offline, &message.query, self->answer);
        herd_places_msg_t answer = { .kind = HERD_PLACES_MSG_ANSWER, .id = message.id,
                                     .text = (const char *) zchunk_data (self->answer),
                                     .text_size = zchunk_size (self->answer) };
        herd_places_msg_send (self->frontend, asker, &answer);
        zframe_destroy (&asker);
        return;
    }
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->id = ++self->next_id;
    job->asker = asker;
    job->request = message.id;
    job->query = message.query;
    job->started = zclock_mono ();
    //  A hit never reaches a worker
    char key [128];
    json_t *cached = self->cache? herd_placecache_lookup (self->cache, s_cache_key (self, &job->query, key, sizeof key)): NULL;
    if (cached) {
        s_reply (self, job, cached, "cache hit");
        s_job_destroy ((void **) &job);
        return;
    }
    //  The same question is already out: wait for that answer, don't ask twice
    s_job_t *leader = self->cache? (s_job_t *) zhashx_lookup (self->asked, key): NULL;
    if (leader) {
        if (!leader->followers) {
            leader->followers = zlistx_new ();
            zlistx_set_destructor (leader->followers, s_job_destroy);
        }
        zlistx_add_end (leader->followers, job);
        return;
    }
    if (zlistx_size (self->queue) >= self->queue_max) {
        json_t *busy = herd_nearby_error ("places: %zu queries already waiting (places/queue)",
                                          self->queue_max);
        s_reply (self, job, busy, "refused");
        json_decref (busy);
        s_job_destroy ((void **) &job);
        return;
    }
    zlistx_add_end (self->queue, job);
    if (self->cache)
        zhashx_insert (self->asked, key, job);
    s_dispatch (self);
}

static void
s_handle_worker (s_places_t *self)
{
    zframe_t *worker = NULL, *frame = NULL;
    herd_places_msg_t message;
    herd_places_msg_kind_t kind = herd_places_msg_recv (self->backend, &worker, &frame, &message);
    zframe_destroy (&frame);
    if (!worker)
        return;
    if (kind == HERD_PLACES_MSG_RESULT) {
        char key [24];
        snprintf (key, sizeof key, "%" PRIu64, message.id);
        s_job_t *job = (s_job_t *) zhashx_lookup (self->running, key);
        json_t *response = message.response;        //  Ours now
        if (job) {
            char cache_key [128];
            s_cache_key (self, &job->query, cache_key, sizeof cache_key);
            if (self->cache) {
                zhashx_delete (self->asked, cache_key);
                //  Charged at its size as text, measured without writing it
                size_t bytes = json_dumpb (response, NULL, 0, JSON_COMPACT);
                if (herd_placecache_insert (self->cache, cache_key, response, bytes)
                &&  self->log_traffic)
                    zsys_info ("places: cached %s (%zu answers, %zu bytes, %" PRIu64 " evicted so far)",
                               cache_key, herd_placecache_size (self->cache),
                               herd_placecache_bytes (self->cache), herd_placecache_evictions (self->cache));
            }
            s_record_latency (self, zclock_mono () - job->started);
            s_reply (self, job, response, self->provider);
            s_job_t *follower = job->followers? (s_job_t *) zlistx_first (job->followers): NULL;
            for (; follower; follower = (s_job_t *) zlistx_next (job->followers))
                s_reply (self, follower, response, "same question, one answer");
        }
        json_decref (response);
        zhashx_delete (self->running, key);
    }
    else
    if (kind != HERD_PLACES_MSG_READY) {
        //  Our own worker: a bug. It is idle all the same.
        zsys_error ("places: a worker sent a message that is no result (%s)",
                    kind == HERD_PLACES_MSG_INVALID? message.reason: "another kind");
    }
    //  READY or an answer: either way the worker is idle now
    zlistx_add_end (self->idle, worker);
    s_dispatch (self);
}

//  Loads the offline data; NULL (and *error_p) if it cannot
static herd_offline_t *
s_load_offline (s_places_t *self, char **error_p)
{
    const char *path = herd_config_string (self->config, "places/offline/data");
    int64_t started = zclock_usecs ();
    herd_offline_t *offline = herd_offline_load (path, error_p);
    if (offline)
        zsys_info ("places: loaded %zu places from %s in %.1f ms", herd_offline_size (offline),
                   path, (zclock_usecs () - started) / 1000.0);
    return offline;
}

//  Picks the provider: google if asked or if auto finds a key; offline if
//  asked or if auto finds no key; none if asked. Forced choices that cannot
//  work stop the server; auto falls back to none, with a warning, when the
//  offline data cannot load. Then starts the workers. 0, or -1 + *error_p.
static int
s_start (s_places_t *self, char **error_p)
{
    herd_config_t *config = self->config;
    const char *choice = herd_config_string (config, "places/provider");
    const char *key_env = herd_config_string (config, "places/google/key_env");
    const char *key = getenv (key_env);
    bool have_key = key && *key;
    if (streq (choice, "google") && !have_key) {
        *error_p = zsys_sprintf ("places/provider is google but %s is not set", key_env);
        return -1;
    }
    if (streq (choice, "google") || (streq (choice, "auto") && have_key))
        self->provider = "google";
    else
    if (streq (choice, "offline") || streq (choice, "auto")) {
        char *error = NULL;
        self->offline = s_load_offline (self, &error);
        if (self->offline)
            self->provider = "offline";
        else
        if (streq (choice, "offline")) {
            *error_p = error;
            return -1;
        }
        else {
            zsys_warning ("places: %s; no provider, WHATSAT answers UNKNOWN_ERROR", error);
            freen (error);
            self->provider = "none";
        }
    }
    else
        self->provider = "none";
    herd_worker_settings_t settings = {
        self->backend_endpoint, self->provider,
        herd_config_string (config, "places/google/api"),
        herd_config_string (config, "places/google/url"),
        have_key? key: "",
        herd_config_number (config, "places/timeout"),
        herd_config_string (config, "places/google/fields")
    };
    //  The offline provider needs neither workers nor a cache: the
    //  server's loop answers from the data itself
    long workers = self->offline? 0: herd_config_number (config, "places/workers");
    for (long worker_nbr = 0; worker_nbr < workers; worker_nbr++)
        zlistx_add_end (self->workers, zactor_new (herd_worker_actor, &settings));
    long ttl = herd_config_number (config, "places/cache/ttl");
    if (streq (self->provider, "google") && ttl > 0)
        self->cache = herd_placecache_new (herd_config_number (config, "places/cache/bytes"),
                                           ttl * 1000);
    if (streq (self->provider, "google"))
        zsys_info ("places: provider google (%s API at %s), %ld workers, timeout %ld ms",
                   settings.google_api, *settings.google_url? settings.google_url: "Google",
                   workers, settings.timeout_ms);
    else
    if (streq (self->provider, "offline"))
        zsys_info ("places: provider offline (%zu places), answered in the server's loop",
                   herd_offline_size (self->offline));
    else
        zsys_warning ("places: provider none: WHATSAT answers UNKNOWN_ERROR");
    if (self->cache)
        zsys_info ("places: cache of %ld bytes, answers fresh for %ld s",
                   herd_config_number (config, "places/cache/bytes"), ttl);
    return 0;
}

void
herd_places_actor (zsock_t *pipe, void *args)
{
    herd_places_args_t *places_args = (herd_places_args_t *) args;
    herd_actor_name ("herd-places");
    s_places_t self_data = { 0 }, *self = &self_data;
    self->pipe = pipe;
    self->config = places_args->config;
    self->server = strdup (places_args->server);
    self->queue_max = herd_config_number (self->config, "places/queue");
    self->log_traffic = herd_config_number (self->config, "herd/log_traffic");
    self->answer = zchunk_new (NULL, 0);
    self->workers = zlistx_new ();
    zlistx_set_destructor (self->workers, s_actor_destroy);
    self->idle = zlistx_new ();
    zlistx_set_destructor (self->idle, s_frame_destroy);
    self->queue = zlistx_new ();
    zlistx_set_destructor (self->queue, s_job_destroy);
    self->running = zhashx_new ();
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, 1);
    zhashx_set_destructor (self->running, s_job_destroy);
    self->asked = zhashx_new ();
    char *endpoint = herd_places_endpoint (self->server);
    self->frontend = zsock_new_router (endpoint);
    freen (endpoint);
    self->backend_endpoint = zsys_sprintf ("inproc://herd-workers-%s", self->server);
    self->backend = zsock_new_router (self->backend_endpoint);
    assert (self->frontend && self->backend);
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, self->frontend, self->backend, NULL);
    //  Signals stop the process through main, which sends us $TERM
    zpoller_set_nonstop (poller, true);
    while (true) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                freen (command);
                break;
            }
            if (streq (command, "START")) {
                char *error = NULL;
                int started = s_start (self, &error);
                places_args->offline = self->offline;
                herd_actor_started (pipe, started, error);
                freen (error);
            }
            else {
                zsys_error ("places: unknown command %s", command);
                assert (false);
            }
            freen (command);
        }
        else
        if (which == self->frontend)
            s_handle_query (self);
        else
        if (which == self->backend)
            s_handle_worker (self);
    }
    if (self->requests)
        zsys_info ("places: %" PRIu64 " queries, %" PRIu64 " failed", self->requests, self->failures);
    if (self->cache)
        zsys_info ("places: cache %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " evictions",
                   herd_placecache_hits (self->cache), herd_placecache_misses (self->cache),
                   herd_placecache_evictions (self->cache));
    zpoller_destroy (&poller);
    zlistx_destroy (&self->workers);    //  Workers first: they hold DEALERs
    //  Results that came after the last pass hold responses: ours to free
    while (zsock_events (self->backend) & ZMQ_POLLIN) {
        zframe_t *worker = NULL, *frame = NULL;
        herd_places_msg_t message;
        if (herd_places_msg_recv (self->backend, &worker, &frame, &message) == HERD_PLACES_MSG_RESULT)
            json_decref (message.response);
        zframe_destroy (&worker);
        zframe_destroy (&frame);
    }
    zlistx_destroy (&self->idle);
    zlistx_destroy (&self->queue);
    zhashx_destroy (&self->asked);
    zhashx_destroy (&self->running);
    herd_ratelimit_destroy (&self->log);
    herd_placecache_destroy (&self->cache);
    herd_offline_destroy (&self->offline);      //  The node that read it has stopped
    zchunk_destroy (&self->answer);
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    freen (self->backend_endpoint);
    freen (self->server);
}

//  --------------------------------------------------------------------------
//  Selftest: queries through the pool with no provider

void
herd_places_test (bool verbose)
{
    printf (" * herd_places: ");
    if (verbose)
        printf ("\n");
    const char *text =
        "herd\n    log_traffic = 0\n"
        "places\n    provider = none\n    workers = 2\n    queue = 3\n"
        "    google\n        key_env = HERD_TEST_NO_SUCH_KEY\n"
        "servers\n    T\n        client = 127.0.0.1:1\n        bus = inproc://t\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "places-test", &error);
    assert (config);
    herd_places_args_t args = { config, "T", NULL };
    zactor_t *places = zactor_new (herd_places_actor, &args);
    assert (herd_actor_start (places, &error) == 0);

    char *endpoint = herd_places_endpoint ("T");
    zsock_t *frontend = zsock_new_dealer (endpoint);
    freen (endpoint);
    //  Ten at once: two workers, three waiting, the rest told busy; each
    //  answer under its own request id
    herd_places_msg_t query = { .kind = HERD_PLACES_MSG_QUERY, .id = 0, .query = { 34.07, -118.44, 10000, 3 } };
    for (query.id = 100; query.id < 110; query.id++)
        assert (herd_places_msg_send (frontend, NULL, &query) == 0);
    int answered = 0, busy = 0;
    bool seen [10] = { false };
    for (int reply = 0; reply < 10; reply++) {
        zframe_t *frame = NULL;
        herd_places_msg_t answer;
        assert (herd_places_msg_recv (frontend, NULL, &frame, &answer) == HERD_PLACES_MSG_ANSWER);
        assert (answer.id >= 100 && answer.id < 110 && !seen [answer.id - 100]);
        seen [answer.id - 100] = true;
        char *copy = zframe_strdup (frame);
        const char *json = copy + 9;                //  Past kind and id
        assert (strstr (json, "UNKNOWN_ERROR"));
        if (strstr (json, "already waiting"))
            busy++;
        else {
            assert (strstr (json, "no places provider is configured"));
            answered++;
        }
        freen (copy);
        zframe_destroy (&frame);
    }
    assert (answered + busy == 10);
    assert (answered >= 3);     //  At least the queue, whatever the timing
    //  The counters, under their asker's id
    herd_places_msg_t stats = { .kind = HERD_PLACES_MSG_STATS, .id = 7 };
    assert (herd_places_msg_send (frontend, NULL, &stats) == 0);
    zframe_t *frame = NULL;
    herd_places_msg_t counts;
    assert (herd_places_msg_recv (frontend, NULL, &frame, &counts) == HERD_PLACES_MSG_COUNTS);
    json_t *numbers = json_loadb (counts.text, counts.text_size, 0, NULL);
    assert (counts.id == 7 && numbers);
    assert (herd_counters_value (numbers, HERD_COUNTER_PLACES_REQUESTS, NULL) == 10);
    json_decref (numbers);
    zframe_destroy (&frame);
    zsock_destroy (&frontend);
    zactor_destroy (&places);
    herd_config_destroy (&config);

    //  The offline provider, when the data is built: the broker hands its
    //  data out at START and answers a query that reaches it on the spot,
    //  with the text the loop makes from the same data
    const char *data = getenv ("HERD_PLACES_DATA");
    if (data) {
        char *offline_text = zsys_sprintf (
            "places\n    provider = offline\n    workers = 2\n"
            "    offline\n        data = \"%s\"\n"
            "servers\n    T\n        client = 127.0.0.1:1\n        bus = inproc://t\n", data);
        config = herd_config_load_text (offline_text, "places-test", &error);
        freen (offline_text);
        assert (config);
        herd_places_args_t offline_args = { config, "T", NULL };
        places = zactor_new (herd_places_actor, &offline_args);
        assert (herd_actor_start (places, &error) == 0);
        assert (offline_args.offline);
        endpoint = herd_places_endpoint ("T");
        frontend = zsock_new_dealer (endpoint);
        freen (endpoint);
        query.id = 200;
        assert (herd_places_msg_send (frontend, NULL, &query) == 0);
        herd_places_msg_t answer;
        assert (herd_places_msg_recv (frontend, NULL, &frame, &answer) == HERD_PLACES_MSG_ANSWER);
        zchunk_t *expected = zchunk_new (NULL, 0);
        size_t size = herd_offline_answer (offline_args.offline, &query.query, expected);
        assert (answer.id == 200 && answer.text_size == size
             && memcmp (answer.text, zchunk_data (expected), size) == 0);
        assert (strstr (answer.text, "\"status\": \"OK\""));
        zchunk_destroy (&expected);
        zframe_destroy (&frame);
        zsock_destroy (&frontend);
        zactor_destroy (&places);
        herd_config_destroy (&config);
    }
    printf ("OK\n");
}
