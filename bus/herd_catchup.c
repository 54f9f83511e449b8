//  bus/herd_catchup.c: one neighbour's catch-up client.

#include "bus/herd_bus_layer.h"

struct _herd_catchup_t {
    zsock_t *dealer;            //  To its sync endpoint
    herd_reader_t *reader;      //  Once attached
    zloop_t *loop;              //  Borrowed
    herd_catchup_handler_t handler;
    bool active;                //  A request is under way
    uint64_t request_id;        //  Of the request asked last
    int64_t started;            //  zclock_mono of that request
    int64_t progress;           //  zclock_mono of its last chunk
    size_t received;            //  Lines of it so far
    size_t fresh;               //  Of those, new to us
};

//  Request ids: seeded by time, so ids from before a restart don't collide
static uint64_t s_next_request_id = 0;

herd_catchup_t *
herd_catchup_new (const char *server, const char *endpoint, herd_keys_t *keys, char **error_p)
{
    assert (server && endpoint && keys && error_p);
    herd_catchup_t *self = (herd_catchup_t *) zmalloc (sizeof (herd_catchup_t));
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 0);
    zsock_set_rcvtimeo (self->dealer, HERD_LOOP_RCVTIMEO);
    //  Requests to a neighbour that is down fail now, not later
    zsock_set_immediate (self->dealer, 1);
    //  A partition stalls TCP without a reset: ZMTP pings notice
    zsock_set_heartbeat_ivl (self->dealer, 1000);
    zsock_set_heartbeat_timeout (self->dealer, 3000);
    zsock_set_connect_timeout (self->dealer, 2000);
    zsock_set_maxmsgsize (self->dealer, HERD_SYNC_MAXMSGSIZE);
    if (herd_keys_apply_client (keys, self->dealer, server, error_p)) {
        herd_catchup_destroy (&self);
        return NULL;
    }
    zsock_connect (self->dealer, "%s", endpoint);
    if (!s_next_request_id)
        s_next_request_id = (uint64_t) zclock_time () << 16;
    return self;
}

void
herd_catchup_destroy (herd_catchup_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_catchup_t *self = *self_p;
        herd_reader_destroy (&self->reader);
        zsock_destroy (&self->dealer);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_catchup_retire (herd_catchup_t *self)
{
    assert (self);
    herd_reader_retire (&self->reader);
}

//  Sends one request of the current id. 0, or -1 if the link cannot take it
static int
s_send (herd_catchup_t *self, herd_sync_msg_kind_t kind)
{
    herd_sync_msg_t message = { .kind = kind, .id = self->request_id };
    zframe_t *frame = herd_sync_msg_encode (&message);
    //  sndtimeo 0: a link that cannot take it fails now, never blocks;
    //  zframe_send keeps a frame it could not send
    int rc = zframe_send (&frame, self->dealer, 0);
    zframe_destroy (&frame);
    if (self->reader)
        herd_reader_check (self->reader);
    return rc;
}

int
herd_catchup_ask (herd_catchup_t *self)
{
    assert (self);
    self->request_id = ++s_next_request_id;
    self->received = self->fresh = 0;
    self->started = self->progress = zclock_mono ();
    self->active = s_send (self, HERD_SYNC_MSG_SYNC) == 0;
    return self->active? 0: -1;
}

void
herd_catchup_cancel (herd_catchup_t *self)
{
    assert (self);
    self->active = false;
}

static void
s_merge_chunk (herd_catchup_t *self, herd_sync_msg_t *chunk)
{
    herd_field_t line;
    while (herd_sync_msg_next (chunk, &line)) {
        int outcome = self->handler.line (line.start, line.size, self->handler.arg);
        if (outcome == HERD_STORE_INVALID)
            continue;           //  The owner says so, as it sees fit
        if (outcome == HERD_STORE_STORED)
            self->fresh++;
        self->received++;
    }
    self->progress = zclock_mono ();
    if (self->handler.merged)
        self->handler.merged (self->handler.arg);
    if (s_send (self, HERD_SYNC_MSG_MORE) == -1) {
        self->active = false;
        self->handler.failed ("lost its link (MORE not taken)", self->handler.arg);
    }
}

static int
s_handle_answer (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_catchup_t *self = (herd_catchup_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    zframe_t *frame = msg && zmsg_size (msg) == 1? zmsg_first (msg): NULL;
    herd_sync_msg_t answer;
    herd_sync_msg_kind_t kind = frame? herd_sync_msg_decode (zframe_data (frame), zframe_size (frame), &answer)
                                     : HERD_SYNC_MSG_INVALID;
    //  Only the request under way is answered; the rest is stale or malformed
    bool current = kind != HERD_SYNC_MSG_INVALID && self->active && answer.id == self->request_id;
    if (current && kind == HERD_SYNC_MSG_CHUNK)
        s_merge_chunk (self, &answer);
    else
    if (current && kind == HERD_SYNC_MSG_DONE) {
        self->active = false;
        self->handler.done (self->handler.arg);
    }
    zmsg_destroy (&msg);
    return 0;
}

void
herd_catchup_attach (herd_catchup_t *self, zloop_t *loop, const herd_catchup_handler_t *handler)
{
    assert (self && loop && handler && handler->line && handler->done && handler->failed);
    assert (!self->reader);
    self->loop = loop;
    self->handler = *handler;
    self->reader = herd_reader_new (loop, self->dealer, s_handle_answer, self);
}

bool
herd_catchup_active (herd_catchup_t *self)
{
    assert (self);
    return self->active;
}

int64_t
herd_catchup_started (herd_catchup_t *self)
{
    assert (self);
    return self->started;
}

int64_t
herd_catchup_progress (herd_catchup_t *self)
{
    assert (self);
    return self->progress;
}

size_t
herd_catchup_received (herd_catchup_t *self)
{
    assert (self);
    return self->received;
}

size_t
herd_catchup_fresh (herd_catchup_t *self)
{
    assert (self);
    return self->fresh;
}

//  --------------------------------------------------------------------------
//  Selftest: against a snapshot server of 1,200 clients over inproc

static size_t s_test_lines = 0;
static size_t s_test_done = 0;

static int
s_test_line (const char *line, size_t size, void *arg)
{
    (void) arg;
    assert (size > 3 && memcmp (line, "AT ", 3) == 0);
    s_test_lines++;
    return s_test_lines % 2? HERD_STORE_STORED: HERD_STORE_STALE;
}

static void
s_test_done_fn (void *arg)
{
    (void) arg;
    s_test_done++;
}

static void
s_test_failed (const char *why, void *arg)
{
    (void) why;
    (void) arg;
    assert (false);
}

void
herd_catchup_test (bool verbose)
{
    printf (" * herd_catchup: ");
    if (verbose)
        printf ("\n");
    const char *text =
        "herd\n    security = off\n"
        "servers\n"
        "    A\n        client = 127.0.0.1:1\n        bus = inproc://herd-catchup-bus\n"
        "        sync = inproc://herd-catchup-sync\n        neighbours = B\n"
        "    B\n        client = 127.0.0.1:2\n        bus = inproc://herd-catchup-bus-b\n"
        "        neighbours = A\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "catchup-test", &error);
    assert (config);
    herd_keys_t *keys = herd_keys_new (config, "B", &error);
    assert (keys);
    herd_store_t *store = herd_store_new (10000);
    for (int client = 0; client < 1200; client++) {
        char line [80];
        snprintf (line, sizeof line, "AT A +0.1 client%d +1+1 %d", client, 100 + client);
        herd_store_offer_text (store, line, strlen (line));
    }
    herd_snapshot_t *snapshot = herd_snapshot_new (config, "A", store, keys, &error);
    assert (snapshot);
    zloop_t *loop = zloop_new ();
    herd_snapshot_attach (snapshot, loop);
    herd_catchup_t *catchup = herd_catchup_new ("A", "inproc://herd-catchup-sync", keys, &error);
    assert (catchup && !herd_catchup_active (catchup));
    herd_catchup_handler_t handler = { s_test_line, NULL, s_test_done_fn, s_test_failed, NULL };
    herd_catchup_attach (catchup, loop, &handler);
    //  A whole snapshot, in chunks, then DONE
    assert (herd_catchup_ask (catchup) == 0 && herd_catchup_active (catchup));
    for (int round = 0; round < 200 && !s_test_done; round++)
        herd_loop_run_for (loop, 10);
    assert (s_test_done == 1 && s_test_lines == 1200 && !herd_catchup_active (catchup));
    assert (herd_catchup_received (catchup) == 1200 && herd_catchup_fresh (catchup) == 600);
    assert (herd_catchup_progress (catchup) >= herd_catchup_started (catchup));
    //  Cancelled before its answers come: they are stale, nothing counts
    assert (herd_catchup_ask (catchup) == 0);
    herd_catchup_cancel (catchup);
    for (int round = 0; round < 30; round++)
        herd_loop_run_for (loop, 10);
    assert (s_test_done == 1 && s_test_lines == 1200 && herd_catchup_received (catchup) == 0);
    //  Asked anew: only the new request's answers count
    assert (herd_catchup_ask (catchup) == 0);
    for (int round = 0; round < 200 && s_test_done < 2; round++)
        herd_loop_run_for (loop, 10);
    assert (s_test_done == 2 && s_test_lines == 2400);
    herd_catchup_destroy (&catchup);
    assert (catchup == NULL);
    herd_snapshot_destroy (&snapshot);
    herd_reader_collect ();
    zloop_destroy (&loop);
    herd_store_destroy (&store);
    herd_keys_destroy (&keys);
    herd_config_destroy (&config);
    printf ("OK\n");
}
