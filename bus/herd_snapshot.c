//  bus/herd_snapshot.c: snapshots of the store, sent to neighbours in
//  chunks as their credit allows.
//
//  Serving never stalls the clients, whatever the askers do:
//  - a snapshot is a cursor over the store's slots (herd_store_scan), not
//    a copy: a SYNC costs O(1) to open, whatever the store holds;
//  - each request (SYNC or MORE) sends at most S_CREDIT chunks of
//    HERD_SYNC_CHUNK_LINES lines, and zloop hands us one request per
//    loop pass, so between two passes that serve clients a storm of
//    requests costs at most S_CREDIT x 500 = 2,000 lines of work (about
//    0.3 ms here; make bench measures it under a SYNC storm);
//  - at most S_SESSIONS_MAX snapshots go out at once, and at most
//    S_SESSIONS_PER_PEER per asking server (its CURVE key, or its
//    address when security is off): a new SYNC past that ends the
//    asker's oldest snapshot.

#include "bus/herd_bus_layer.h"

#define S_CREDIT            4       //  Chunks an answerer may send ahead
#define S_SESSIONS_MAX      16      //  Snapshots being sent at once
#define S_SESSIONS_PER_PEER 2       //  Of which from one asking server
#define S_SESSION_IDLE      30000   //  An asker silent this long is gone

//  A snapshot we are sending to an asker
typedef struct {
    zframe_t *identity;         //  The asker's routing id (owned)
    char *peer;                 //  Who asked: its key or address (owned)
    uint64_t id;                //  Its request id
    size_t cursor;              //  Next store slot to send
    size_t end;                 //  Slots the store had when asked
    size_t sent;                //  Lines sent
    int credit;                 //  Chunks we may still send
    int64_t opened;             //  zclock_mono of its SYNC
    int64_t active;             //  zclock_mono of its last request
} s_session_t;

struct _herd_snapshot_t {
    herd_store_t *store;        //  Borrowed
    zsock_t *router;            //  Our sync endpoint, or NULL
    herd_reader_t *reader;      //  Reads router, once attached
    zhashx_t *sessions;         //  identity hex -> s_session_t (owned)
    herd_keys_t *keys;          //  Borrowed
    uint64_t refused;           //  SYNCs dropped at S_SESSIONS_MAX
    uint64_t replaced;          //  Snapshots ended by a newer SYNC from the same server
    herd_ratelimit_t *log;      //  What askers make us log, limited per connection (owned)
};

static void
s_session_destroy (void **item_p)
{
    s_session_t *session = (s_session_t *) *item_p;
    if (session) {
        zframe_destroy (&session->identity);
        freen (session->peer);
        freen (session);
        *item_p = NULL;
    }
}

herd_snapshot_t *
herd_snapshot_new (herd_config_t *config, const char *server, herd_store_t *store,
                   herd_keys_t *keys, char **error_p)
{
    assert (config && server && store && keys && error_p);
    herd_snapshot_t *self = (herd_snapshot_t *) zmalloc (sizeof (herd_snapshot_t));
    self->keys = keys;
    self->store = store;
    self->sessions = zhashx_new ();
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    zhashx_set_destructor (self->sessions, s_session_destroy);
    const char *bind = herd_config_server_endpoint (config, server, "sync_bind");
    if (bind) {
        self->router = zsock_new (ZMQ_ROUTER);
        zsock_set_linger (self->router, 0);
        zsock_set_rcvtimeo (self->router, HERD_LOOP_RCVTIMEO);
        zsock_set_sndhwm (self->router, S_SESSIONS_MAX * (S_CREDIT + 1));
        zsock_set_maxmsgsize (self->router, HERD_REQUEST_MAXMSGSIZE);
        //  Only listed keys may ask (zauth, domain "sync")
        herd_keys_apply_server (keys, self->router, "sync");
        if (zsock_bind (self->router, "%s", bind) == -1) {
            *error_p = zsys_sprintf ("cannot bind sync endpoint %s (servers/%s/sync in %s): %s", bind, server,
                                     herd_config_filename (config), zmq_strerror (zmq_errno ()));
            herd_snapshot_destroy (&self);
            return NULL;
        }
    }
    zsys_info ("sync: %s%s", bind? "answering catch-up requests on ": "no sync endpoint",
               bind? bind: "");
    return self;
}

void
herd_snapshot_destroy (herd_snapshot_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_snapshot_t *self = *self_p;
        zhashx_destroy (&self->sessions);
        herd_ratelimit_destroy (&self->log);
        herd_reader_destroy (&self->reader);
        zsock_destroy (&self->router);
        freen (self);
        *self_p = NULL;
    }
}

//  Sends one message to an asker (the routing id is the ROUTER's
//  envelope, not a frame of the message itself)
static void
s_send_to (herd_snapshot_t *self, zframe_t *identity, const herd_sync_msg_t *message)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *envelope = zframe_dup (identity);
    zmsg_append (msg, &envelope);
    zframe_t *frame = herd_sync_msg_encode (message);
    zmsg_append (msg, &frame);
    zmsg_send (&msg, self->router);
    if (self->reader)
        herd_reader_check (self->reader);
}

//  A chunk's lines, one \n between each
static int
s_add_line (const char *line, size_t size, void *arg)
{
    zchunk_t *lines = (zchunk_t *) arg;
    if (zchunk_size (lines))
        zchunk_extend (lines, "\n", 1);
    zchunk_extend (lines, line, size);
    return 0;
}

//  Sends what credit allows of a snapshot, then DONE when it is all out.
//  Each line is read when sent, so it is the newest we hold by then.
static void
s_session_pump (herd_snapshot_t *self, s_session_t *session, const char *key)
{
    zchunk_t *lines = zchunk_new (NULL, 64 * 1024);
    while (session->credit > 0 && session->cursor < session->end) {
        zchunk_set (lines, NULL, 0);
        int visited = herd_store_scan (self->store, &session->cursor,
                                       HERD_SYNC_CHUNK_LINES < session->end - session->cursor
                                       ? HERD_SYNC_CHUNK_LINES: session->end - session->cursor, s_add_line, lines);
        session->sent += visited > 0? (size_t) visited: 0;
        herd_sync_msg_t chunk = { .kind = HERD_SYNC_MSG_CHUNK, .id = session->id,
                                  .lines = zchunk_size (lines)? (const char *) zchunk_data (lines): NULL,
                                  .lines_size = zchunk_size (lines) };
        s_send_to (self, session->identity, &chunk);
        session->credit--;
    }
    zchunk_destroy (&lines);
    if (session->cursor >= session->end) {
        herd_sync_msg_t done = { .kind = HERD_SYNC_MSG_DONE, .id = session->id, .count = session->sent };
        s_send_to (self, session->identity, &done);
        zsys_info ("sync: sent a snapshot of %zu updates to %s", session->sent, session->peer);
        zhashx_delete (self->sessions, key);
    }
}

//  Who asks, for the per-server bound: its CURVE key as zauth admitted
//  it, or its address when the link is plain
static char *
s_peer_of (zframe_t *frame)
{
    //  With security on, zauth hands up the certificate's name (the
    //  server's, as herd --keygen wrote it) and its key
    const char *name = zframe_meta (frame, "name");
    const char *user = zframe_meta (frame, "User-Id");
    const char *address = zframe_meta (frame, "Peer-Address");
    return strdup (name && *name? name: user && *user? user: address? address: "unknown");
}

//  Ends the oldest snapshot going to peer if it already has its share
static void
s_bound_peer (herd_snapshot_t *self, const char *peer)
{
    size_t count = 0;
    s_session_t *oldest = NULL;
    for (s_session_t *session = (s_session_t *) zhashx_first (self->sessions); session;
         session = (s_session_t *) zhashx_next (self->sessions))
        if (streq (session->peer, peer)) {
            count++;
            if (!oldest || session->opened < oldest->opened)
                oldest = session;
        }
    if (count >= S_SESSIONS_PER_PEER) {
        char *key = zframe_strhex (oldest->identity);
        zhashx_delete (self->sessions, key);
        freen (key);
        self->replaced++;
    }
}

//  A neighbour asks: SYNC or MORE
static int
s_handle_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_snapshot_t *self = (herd_snapshot_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *frame = zmsg_size (msg) == 1? zmsg_first (msg): NULL;
    herd_sync_msg_t request;
    herd_sync_msg_kind_t kind = frame? herd_sync_msg_decode (zframe_data (frame), zframe_size (frame), &request)
                                     : HERD_SYNC_MSG_INVALID;
    char *key = identity? zframe_strhex (identity): NULL;
    if (!key || (kind != HERD_SYNC_MSG_SYNC && kind != HERD_SYNC_MSG_MORE))
        herd_ratelimit_log (self->log, key? key: "?", LOG_WARNING, "sync: dropped a malformed request");
    else
    if (kind == HERD_SYNC_MSG_SYNC) {
        char *peer = s_peer_of (frame);
        //  A new SYNC on the same connection replaces its snapshot
        zhashx_delete (self->sessions, key);
        s_bound_peer (self, peer);
        if (zhashx_size (self->sessions) >= S_SESSIONS_MAX) {
            if (self->refused++ % 100 == 0)
                zsys_warning ("sync: %d snapshots already going out; a request from %s dropped "
                              "(1 in 100 such drops is logged)", S_SESSIONS_MAX, peer);
            freen (peer);
        }
        else {
            s_session_t *session = (s_session_t *) zmalloc (sizeof (s_session_t));
            session->identity = identity;
            identity = NULL;
            session->peer = peer;
            session->id = request.id;
            //  The snapshot covers the clients held now; lines added to
            //  them later go out as they are when their turn comes
            session->end = herd_store_slots (self->store);
            session->credit = S_CREDIT;
            session->opened = session->active = zclock_mono ();
            zhashx_update (self->sessions, key, session);
            herd_ratelimit_log (self->log, key, LOG_INFO, "sync: %s asked for a snapshot (%zu clients)",
                                peer, session->end);
            s_session_pump (self, session, key);
        }
    }
    else {
        s_session_t *session = (s_session_t *) zhashx_lookup (self->sessions, key);
        //  Credit never piles up past S_CREDIT, so a MORE is one chunk
        if (session && session->id == request.id && session->credit < S_CREDIT) {
            session->credit++;
            session->active = zclock_mono ();
            s_session_pump (self, session, key);
        }
    }
    freen (key);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
    return 0;
}

//  Sessions whose asker went silent are dropped
static int
s_reap_sessions (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_snapshot_t *self = (herd_snapshot_t *) arg;
    int64_t now = zclock_mono ();
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
herd_snapshot_attach (herd_snapshot_t *self, zloop_t *loop)
{
    assert (self);
    if (self->router) {
        assert (!self->reader);
        self->reader = herd_reader_new (loop, self->router, s_handle_request, self);
        herd_keys_watch (self->keys, loop, self->router, "sync", NULL, NULL);
        zloop_timer (loop, 1000, 0, s_reap_sessions, self);
    }
}

size_t
herd_snapshot_sessions (herd_snapshot_t *self)
{
    assert (self);
    return zhashx_size (self->sessions);
}

void
herd_snapshot_stats (herd_snapshot_t *self, json_t *stats)
{
    assert (self && stats);
    herd_counters_put (stats, HERD_COUNTER_SNAPSHOTS_GOING_OUT, zhashx_size (self->sessions));
    herd_counters_put (stats, HERD_COUNTER_SNAPSHOTS_REFUSED, self->refused);
    herd_counters_put (stats, HERD_COUNTER_SNAPSHOTS_REPLACED, self->replaced);
}

//  --------------------------------------------------------------------------
//  Selftest: a DEALER asks for a store of 2,600 clients, chunk by chunk

//  The next message, decoded into message; its frame in *frame_p (the
//  fields point into it: destroy it after)
static void
s_receive (zsock_t *dealer, herd_sync_msg_t *message, zframe_t **frame_p)
{
    zframe_destroy (frame_p);
    *frame_p = zframe_recv (dealer);
    assert (*frame_p);
    assert (herd_sync_msg_decode (zframe_data (*frame_p), zframe_size (*frame_p), message));
}

static void
s_ask (zsock_t *dealer, herd_sync_msg_kind_t kind, uint64_t id)
{
    herd_sync_msg_t message = { .kind = kind, .id = id };
    zframe_t *frame = herd_sync_msg_encode (&message);
    zframe_send (&frame, dealer, 0);
    zframe_destroy (&frame);
}

void
herd_snapshot_test (bool verbose)
{
    printf (" * herd_snapshot: ");
    if (verbose)
        printf ("\n");
    const char *text =
        "herd\n"
        "    security = off\n"
        "servers\n"
        "    A\n"
        "        client = 127.0.0.1:1\n"
        "        bus = inproc://herd-snapshot-test-bus\n"
        "        sync = inproc://herd-snapshot-test\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "snapshot-test", &error);
    assert (config);
    herd_store_t *store = herd_store_new (10000);
    for (int client = 0; client < 2600; client++) {
        char line [80];
        int size = snprintf (line, sizeof line, "AT A +0.1 client%d +1+1 %d", client, 100 + client);
        herd_store_offer_text (store, line, size);
    }
    herd_keys_t *keys = herd_keys_new (config, "A", &error);
    assert (keys);
    herd_snapshot_t *snapshot = herd_snapshot_new (config, "A", store, keys, &error);
    assert (snapshot);
    //  A second bind of the same endpoint fails with a clear message
    herd_snapshot_t *again = herd_snapshot_new (config, "A", store, keys, &error);
    assert (!again && strstr (error, "cannot bind sync endpoint inproc://herd-snapshot-test"));
    freen (error);
    zloop_t *loop = zloop_new ();
    herd_snapshot_attach (snapshot, loop);
    zsock_t *dealer = zsock_new_dealer ("inproc://herd-snapshot-test");
    zsock_set_rcvtimeo (dealer, 2000);

    //  SYNC: the first S_CREDIT chunks come at once, then one per MORE
    s_ask (dealer, HERD_SYNC_MSG_SYNC, 77);
    herd_loop_run_for (loop, 20);
    zhashx_t *seen = zhashx_new ();
    size_t chunks = 0;
    herd_sync_msg_t message;
    zframe_t *frame = NULL;
    while (true) {
        s_receive (dealer, &message, &frame);
        assert (message.id == 77);
        if (message.kind == HERD_SYNC_MSG_DONE)
            break;
        assert (message.kind == HERD_SYNC_MSG_CHUNK);
        assert (message.line_count <= HERD_SYNC_CHUNK_LINES);
        herd_field_t line;
        while (herd_sync_msg_next (&message, &line)) {
            herd_at_t at;
            assert (herd_protocol_parse_at (line.start, line.size, &at) == 0);
            char *text = strndup (line.start, line.size);
            zhashx_update (seen, text, seen);     //  A set: the key is what counts
            freen (text);
        }
        chunks++;
        if (chunks < S_CREDIT)
            continue;               //  Sent ahead, no MORE needed yet
        if (chunks == S_CREDIT) {
            //  Credit spent: nothing more comes until we ask
            zsock_set_rcvtimeo (dealer, 50);
            zframe_t *early = zframe_recv (dealer);
            assert (early == NULL);
            zsock_set_rcvtimeo (dealer, 2000);
        }
        s_ask (dealer, HERD_SYNC_MSG_MORE, 77);
        herd_loop_run_for (loop, 5);
    }
    assert (chunks == 6);       //  2,600 lines: 5 x 500 + 100
    assert (message.count == 2600);
    assert (zhashx_size (seen) == 2600);
    zframe_destroy (&frame);
    assert (herd_snapshot_sessions (snapshot) == 0);
    //  Malformed requests are dropped, the server goes on
    zstr_send (dealer, "SYNC x");
    zstr_send (dealer, "CHUNK 1");
    s_ask (dealer, HERD_SYNC_MSG_MORE, 12345);
    herd_loop_run_for (loop, 20);
    assert (herd_snapshot_sessions (snapshot) == 0);

    //  One server may have S_SESSIONS_PER_PEER snapshots going out; its
    //  next SYNC ends its oldest (inproc askers all look like one server)
    zsock_t *askers [3];
    for (int index = 0; index < 3; index++) {
        askers [index] = zsock_new_dealer ("inproc://herd-snapshot-test");
        s_ask (askers [index], HERD_SYNC_MSG_SYNC, 100 + index);
        herd_loop_run_for (loop, 10);
    }
    assert (herd_snapshot_sessions (snapshot) == S_SESSIONS_PER_PEER);
    json_t *stats = json_object ();
    herd_snapshot_stats (snapshot, stats);
    assert (herd_counters_value (stats, HERD_COUNTER_SNAPSHOTS_REPLACED, NULL) == 1);
    json_decref (stats);
    for (int index = 0; index < 3; index++)
        zsock_destroy (&askers [index]);
    zhashx_destroy (&seen);
    zsock_destroy (&dealer);
    herd_snapshot_destroy (&snapshot);
    herd_keys_destroy (&keys);
    zloop_destroy (&loop);
    herd_store_destroy (&store);
    herd_config_destroy (&config);
    printf ("OK\n");
}
