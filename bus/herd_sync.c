//  bus/herd_sync.c: snapshot catch-up between neighbours.

#include "herd_classes.h"

#define S_CREDIT        4           //  Chunks an answerer may send ahead
#define S_CHUNK_LINES   500         //  AT lines per chunk
#define S_STALL_MSECS   5000        //  No progress this long: give up, retry
#define S_SESSIONS_MAX  64          //  Snapshots being sent at once
#define S_SESSION_IDLE  30000       //  An asker silent this long is gone

//  A snapshot we are sending to an asker
typedef struct {
    zframe_t *identity;         //  The asker's routing id (owned)
    uint64_t id;                //  Its request id
    zlistx_t *clients;          //  Client ids still to send (owned)
    size_t sent;                //  Lines sent
    int credit;                 //  Chunks we may still send
    int64_t active;             //  zclock_mono of its last request
} s_session_t;

//  A neighbour we catch up with
typedef struct {
    herd_sync_t *sync;          //  Parent, not owned
    char *name;
    zsock_t *dealer;            //  To its sync endpoint, or NULL
    uint64_t id;                //  Current request id, 0 if none
    bool syncing;               //  A snapshot is coming
    bool again;                 //  Updates were lost meanwhile: ask again after
    int64_t started;            //  zclock_mono of the request
    int64_t progress;           //  zclock_mono of the last chunk
    size_t received;            //  Lines in this snapshot so far
    size_t fresh;               //  Of those, new to us
    size_t completed;           //  Catch-ups done with it
} s_peer_t;

struct _herd_sync_t {
    char *server;
    herd_store_t *store;        //  Borrowed
    zsock_t *router;            //  Our sync endpoint, or NULL
    zhashx_t *sessions;         //  identity hex -> s_session_t (owned)
    zlistx_t *peers;            //  s_peer_t (owned)
    herd_sync_merge_fn *merge;
    herd_sync_failed_fn *failed;
    void *arg;
    uint64_t next_id;
    bool caught_up;             //  A first catch-up has completed
};

static void
s_session_destroy (void **item_p)
{
    s_session_t *session = (s_session_t *) *item_p;
    if (session) {
        zframe_destroy (&session->identity);
        zlistx_destroy (&session->clients);
        freen (session);
        *item_p = NULL;
    }
}

static void
s_peer_destroy (void **item_p)
{
    s_peer_t *peer = (s_peer_t *) *item_p;
    if (peer) {
        zsock_destroy (&peer->dealer);
        freen (peer->name);
        freen (peer);
        *item_p = NULL;
    }
}

herd_sync_t *
herd_sync_new (herd_config_t *config, const char *server, herd_store_t *store, char **error_p)
{
    herd_sync_t *self = (herd_sync_t *) zmalloc (sizeof (herd_sync_t));
    self->server = strdup (server);
    self->store = store;
    self->sessions = zhashx_new ();
    zhashx_set_destructor (self->sessions, s_session_destroy);
    self->peers = zlistx_new ();
    zlistx_set_destructor (self->peers, s_peer_destroy);
    //  Seeded by time so ids from before a restart don't collide
    self->next_id = (uint64_t) zclock_time () << 16;
    const char *bind = herd_config_server_endpoint (config, server, "sync_bind");
    if (bind) {
        self->router = zsock_new (ZMQ_ROUTER);
        zsock_set_linger (self->router, 0);
        zsock_set_rcvtimeo (self->router, HERD_LOOP_RCVTIMEO);
        zsock_set_sndhwm (self->router, S_SESSIONS_MAX * (S_CREDIT + 1));
        if (zsock_bind (self->router, "%s", bind) == -1) {
            *error_p = zsys_sprintf ("cannot bind sync endpoint %s: %s", bind, zmq_strerror (zmq_errno ()));
            herd_sync_destroy (&self);
            return NULL;
        }
    }
    zlistx_t *names = herd_config_neighbours (config, server);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        s_peer_t *peer = (s_peer_t *) zmalloc (sizeof (s_peer_t));
        peer->sync = self;
        peer->name = strdup (name);
        const char *endpoint = herd_config_server_endpoint (config, name, "sync");
        if (endpoint) {
            peer->dealer = zsock_new (ZMQ_DEALER);
            zsock_set_linger (peer->dealer, 0);
            zsock_set_sndtimeo (peer->dealer, 0);
            zsock_set_rcvtimeo (peer->dealer, HERD_LOOP_RCVTIMEO);
            //  Requests to a neighbour that is down fail now, not later
            zsock_set_immediate (peer->dealer, 1);
            //  A partition stalls TCP without a reset: ZMTP pings notice
            zsock_set_heartbeat_ivl (peer->dealer, 1000);
            zsock_set_heartbeat_timeout (peer->dealer, 3000);
            zsock_set_connect_timeout (peer->dealer, 2000);
            zsock_set_maxmsgsize (peer->dealer, (int64_t) S_CHUNK_LINES * (HERD_BUS_MAXMSGSIZE + 64));
            zsock_connect (peer->dealer, "%s", endpoint);
        }
        else
            zsys_warning ("sync: %s has no sync endpoint; cannot catch up with it", name);
        zlistx_add_end (self->peers, peer);
    }
    self->caught_up = zlistx_size (self->peers) == 0;
    zsys_info ("sync: %s%s", bind? "answering catch-up requests on ": "no sync endpoint",
               bind? bind: "");
    if (!self->caught_up)
        zsys_info ("sync: not caught up yet: waiting for a neighbour's snapshot");
    return self;
}

void
herd_sync_destroy (herd_sync_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_sync_t *self = *self_p;
        zhashx_destroy (&self->sessions);
        zlistx_destroy (&self->peers);
        zsock_destroy (&self->router);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

//  Sends one single-frame message to an asker (the routing id is ROUTER
//  envelope, not a frame of the message itself)
static void
s_send_to (herd_sync_t *self, zframe_t *identity, const char *text, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *envelope = zframe_dup (identity);
    zmsg_append (msg, &envelope);
    zmsg_addmem (msg, text, size);
    zmsg_send (&msg, self->router);
}

//  Sends what credit allows of a snapshot, then DONE when it is all out
static void
s_session_pump (herd_sync_t *self, s_session_t *session, const char *key)
{
    while (session->credit > 0 && zlistx_size (session->clients)) {
        char *chunk = NULL;
        size_t chunk_size = 0;
        FILE *text = open_memstream (&chunk, &chunk_size);
        fprintf (text, "CHUNK %" PRIu64, session->id);
        for (int line_nbr = 0; line_nbr < S_CHUNK_LINES && zlistx_size (session->clients); line_nbr++) {
            char *client = (char *) zlistx_detach (session->clients, NULL);
            const char *line = herd_store_lookup (self->store, client, NULL);
            if (line) {
                fprintf (text, "\n%s", line);
                session->sent++;
            }
            freen (client);
        }
        fclose (text);
        s_send_to (self, session->identity, chunk, chunk_size);
        freen (chunk);
        session->credit--;
    }
    if (zlistx_size (session->clients) == 0) {
        char done [64];
        int size = snprintf (done, sizeof done, "DONE %" PRIu64 " %zu", session->id, session->sent);
        s_send_to (self, session->identity, done, size);
        zsys_info ("sync: sent a snapshot of %zu updates", session->sent);
        zhashx_delete (self->sessions, key);
    }
}

//  A neighbour asks: "SYNC <id>" or "MORE <id>"
static int
s_handle_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_sync_t *self = (herd_sync_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    zframe_t *identity = zmsg_pop (msg);
    char *request = zmsg_popstr (msg);
    char command [8] = "";
    uint64_t id = 0;
    char *key = identity? zframe_strhex (identity): NULL;
    if (!key || !request || sscanf (request, "%7s %" SCNu64, command, &id) != 2)
        zsys_warning ("sync: dropped a malformed request");
    else
    if (streq (command, "SYNC")) {
        if (zhashx_size (self->sessions) >= S_SESSIONS_MAX && !zhashx_lookup (self->sessions, key))
            zsys_warning ("sync: %d snapshots already going out; request dropped", S_SESSIONS_MAX);
        else {
            s_session_t *session = (s_session_t *) zmalloc (sizeof (s_session_t));
            session->identity = identity;
            identity = NULL;
            session->id = id;
            //  The snapshot is of the client ids now; each line is read
            //  when sent, so it is the newest we hold by then
            session->clients = herd_store_clients (self->store);
            session->credit = S_CREDIT;
            session->active = zclock_mono ();
            zhashx_update (self->sessions, key, session);
            zsys_info ("sync: a neighbour asked for a snapshot (%zu clients)",
                       zlistx_size (session->clients));
            s_session_pump (self, session, key);
        }
    }
    else
    if (streq (command, "MORE")) {
        s_session_t *session = (s_session_t *) zhashx_lookup (self->sessions, key);
        if (session && session->id == id) {
            session->credit++;
            session->active = zclock_mono ();
            s_session_pump (self, session, key);
        }
    }
    else
        zsys_warning ("sync: dropped unknown request %s", command);
    freen (key);
    freen (request);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
    return 0;
}

//  Sends "<command> <id>" to a neighbour. 0, or -1 if it cannot take it
static int
s_ask (s_peer_t *peer, const char *command)
{
    return zstr_sendf (peer->dealer, "%s %" PRIu64, command, peer->id);
}

//  A neighbour answers: "CHUNK <id>\n<AT line>\n..." or "DONE <id> <count>"
static int
s_handle_answer (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_peer_t *peer = (s_peer_t *) arg;
    herd_sync_t *self = peer->sync;
    zmsg_t *msg = zmsg_recv (reader);
    zframe_t *frame = msg? zmsg_first (msg): NULL;
    if (!frame || zmsg_size (msg) != 1) {
        zmsg_destroy (&msg);
        return 0;                   //  Not ours: drop
    }
    char *text = zframe_strdup (frame);
    char command [8] = "";
    uint64_t id = 0;
    bool current = sscanf (text, "%7s %" SCNu64, command, &id) == 2
                && peer->syncing && id == peer->id;
    if (!current)
        ;                           //  Stale or malformed: ignore
    else
    if (streq (command, "CHUNK")) {
        char *saveptr = NULL;
        strtok_r (text, "\n", &saveptr);                //  The header
        for (char *line = strtok_r (NULL, "\n", &saveptr); line; line = strtok_r (NULL, "\n", &saveptr)) {
            if (self->merge && self->merge (peer->name, line, strlen (line), self->arg))
                peer->fresh++;
            peer->received++;
        }
        peer->progress = zclock_mono ();
        if (s_ask (peer, "MORE") == -1) {
            peer->syncing = false;
            zsys_warning ("sync: %s went away during catch-up", peer->name);
            if (self->failed)
                self->failed (peer->name, self->arg);
        }
    }
    else
    if (streq (command, "DONE")) {
        peer->syncing = false;
        peer->completed++;
        zsys_info ("sync: caught up with %s: %zu updates, %zu new to us, in %" PRId64 " ms",
                   peer->name, peer->received, peer->fresh, zclock_mono () - peer->started);
        if (!self->caught_up)
            zsys_info ("sync: caught up (first catch-up done)");
        self->caught_up = true;
        if (peer->again)
            herd_sync_request (self, peer->name, "updates were lost during the last catch-up");
    }
    freen (text);
    zmsg_destroy (&msg);
    return 0;
}

//  A catch-up that stopped making progress is abandoned and retried
static int
s_check_stalls (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_sync_t *self = (herd_sync_t *) arg;
    int64_t now = zclock_mono ();
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->syncing && now - peer->progress > S_STALL_MSECS) {
            peer->syncing = false;
            zsys_warning ("sync: catch-up with %s stalled; will ask again", peer->name);
            if (self->failed)
                self->failed (peer->name, self->arg);
        }
    //  Sessions whose asker went silent are dropped
    zlistx_t *keys = zhashx_keys (self->sessions);
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys)) {
        s_session_t *session = (s_session_t *) zhashx_lookup (self->sessions, key);
        if (now - session->active > S_SESSION_IDLE)
            zhashx_delete (self->sessions, key);
    }
    zlistx_destroy (&keys);
    return 0;
}

void
herd_sync_attach (herd_sync_t *self, zloop_t *loop, herd_sync_merge_fn *merge,
                  herd_sync_failed_fn *failed, void *arg)
{
    assert (self);
    self->merge = merge;
    self->failed = failed;
    self->arg = arg;
    if (self->router)
        zloop_reader (loop, self->router, s_handle_request, self);
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        if (peer->dealer)
            zloop_reader (loop, peer->dealer, s_handle_answer, peer);
    zloop_timer (loop, 1000, 0, s_check_stalls, self);
}

void
herd_sync_request (herd_sync_t *self, const char *neighbour, const char *why)
{
    assert (self);
    s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers);
    while (peer && !streq (peer->name, neighbour))
        peer = (s_peer_t *) zlistx_next (self->peers);
    if (!peer || !peer->dealer)
        return;
    if (peer->syncing) {
        //  Restarting would throw away the chunks already merged, and a
        //  stream of gaps could keep a catch-up from ever finishing
        peer->again = true;
        return;
    }
    peer->again = false;
    peer->id = ++self->next_id;
    peer->received = peer->fresh = 0;
    peer->started = peer->progress = zclock_mono ();
    if (s_ask (peer, "SYNC") == -1) {
        peer->syncing = false;
        zsys_warning ("sync: cannot ask %s for a snapshot (%s); will ask again",
                      peer->name, zmq_strerror (zmq_errno ()));
        if (self->failed)
            self->failed (peer->name, self->arg);
        return;
    }
    peer->syncing = true;
    zsys_info ("sync: asking %s for a snapshot (%s)", peer->name, why);
}

bool
herd_sync_caught_up (herd_sync_t *self)
{
    assert (self);
    return self->caught_up;
}

json_t *
herd_sync_state (herd_sync_t *self)
{
    assert (self);
    json_t *state = json_object ();
    for (s_peer_t *peer = (s_peer_t *) zlistx_first (self->peers); peer;
         peer = (s_peer_t *) zlistx_next (self->peers))
        json_object_set_new (state, peer->name, json_pack ("{s:b, s:I}",
            "syncing", peer->syncing, "completed", (json_int_t) peer->completed));
    return state;
}

//  --------------------------------------------------------------------------
//  Selftest: B catches up with A's store of 1,234 clients over inproc

static herd_store_t *s_target = NULL;

static bool
s_merge (const char *neighbour, const char *line, size_t size, void *arg)
{
    (void) neighbour;
    (void) arg;
    return herd_store_offer (s_target, line, size, NULL) == HERD_STORE_STORED;
}

static int
s_give_up (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;
}

static int
s_until_caught_up (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    return herd_sync_caught_up ((herd_sync_t *) arg)? -1: 0;
}

void
herd_sync_test (bool verbose)
{
    printf (" * herd_sync: ");
    if (verbose)
        printf ("\n");
    const char *text =
        "servers\n"
        "    A\n"
        "        client = 127.0.0.1:1\n"
        "        bus = inproc://herd-sync-test-bus-a\n"
        "        sync = inproc://herd-sync-test-a\n"
        "        neighbours = B\n"
        "    B\n"
        "        client = 127.0.0.1:2\n"
        "        bus = inproc://herd-sync-test-bus-b\n"
        "        sync = inproc://herd-sync-test-b\n"
        "        neighbours = A\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "sync-test", &error);
    assert (config);
    herd_store_t *source = herd_store_new (10000);
    s_target = herd_store_new (10000);
    for (int client = 0; client < 1234; client++) {
        char line [80];
        int size = snprintf (line, sizeof line, "AT A +0.1 client%d +1+1 %d", client, 100 + client);
        herd_store_offer (source, line, size, NULL);
    }
    //  B already holds something newer than A's for one client
    const char *newer = "AT B +0.1 client7 +2+2 9999";
    herd_store_offer (s_target, newer, strlen (newer), NULL);
    herd_sync_t *a = herd_sync_new (config, "A", source, &error);
    herd_sync_t *b = herd_sync_new (config, "B", s_target, &error);
    assert (a && b);
    assert (!herd_sync_caught_up (b));
    zloop_t *loop = zloop_new ();
    herd_sync_attach (a, loop, NULL, NULL, NULL);
    herd_sync_attach (b, loop, s_merge, NULL, NULL);
    herd_sync_request (b, "A", "selftest");
    zloop_timer (loop, 10, 0, s_until_caught_up, b);
    zloop_timer (loop, 5000, 1, s_give_up, NULL);
    zloop_start (loop);
    assert (herd_sync_caught_up (b));
    assert (herd_store_size (s_target) == 1234);
    assert (streq (herd_store_lookup (s_target, "client7", NULL), newer));
    json_t *state = herd_sync_state (b);
    assert (json_integer_value (json_object_get (json_object_get (state, "A"), "completed")) == 1);
    json_decref (state);
    zloop_destroy (&loop);
    herd_sync_destroy (&a);
    herd_sync_destroy (&b);
    herd_store_destroy (&source);
    herd_store_destroy (&s_target);
    herd_config_destroy (&config);
    printf ("OK\n");
}
