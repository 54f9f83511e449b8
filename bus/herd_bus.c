//  bus/herd_bus.c: the publishing side of flooding, heartbeats, and the peers.

#include "bus/herd_bus_layer.h"

struct _herd_bus_t {
    char *server;               //  Our own name
    herd_xpub_t *pub;           //  Bound; neighbours connect
    herd_bus_batch_t *batch;    //  What this loop pass accepted, not sent yet
    uint64_t sequence;          //  Batches we sent
    uint64_t published;         //  Updates in them
    zlistx_t *peers;            //  herd_peer_t items, one per neighbour (owned)
    herd_keys_t *keys;          //  Borrowed
    int heartbeat;              //  msecs between heartbeats
    herd_traffic_t *traffic;    //  Flushed each beat, or NULL (borrowed). What
                                //  is published is not logged again: a client's
                                //  IAMAT or a neighbour's update that was stored
                                //  is logged where it came in, and was flooded
};

static void
s_peer_destroy (void **item_p)
{
    herd_peer_destroy ((herd_peer_t **) item_p);
}

herd_bus_t *
herd_bus_new (herd_config_t *config, const char *server, herd_keys_t *keys, char **error_p)
{
    assert (config && keys && error_p);
    herd_bus_t *self = (herd_bus_t *) zmalloc (sizeof (herd_bus_t));
    self->keys = keys;
    self->server = strdup (server);
    self->batch = herd_bus_batch_new (server);
    self->heartbeat = (int) herd_config_number (config, "bus/heartbeat");
    self->peers = zlistx_new ();
    zlistx_set_destructor (self->peers, s_peer_destroy);

    //  XPUB, not PUB: a PUB can leak a multipart message half sent when a
    //  subscriber leaves (libzmq 4.3), an XPUB takes it back. A neighbour
    //  subscribes to everything, one prefix: a key that sends many is
    //  dropped with everyone. Only listed keys may subscribe (zauth,
    //  domain "bus").
    //  No ZMTP heartbeat on this side: a subscriber that stalls (a pause,
    //  SIGSTOP) is not cut off while it still has our messages to read, it
    //  just loses what passes the HWM, and catches up. (Cutting it then
    //  also trips libzmq 4.3's "!_more" assertion in fq.cpp, issue #3663.)
    //  The subscriber side pings, and drops links that went silent.
    const char *bind = herd_config_bus_bind (config, server);
    self->pub = herd_xpub_new (bind, "bus", "neighbour", (int) herd_config_number (config, "bus/hwm"),
                               HERD_BUS_MAX_SUBSCRIPTIONS, "a neighbour takes one", keys, error_p);
    if (!self->pub) {
        char *error = *error_p;
        *error_p = zsys_sprintf ("%s (servers/%s/bus%s in %s)", error, server,
                                 herd_config_server_endpoint (config, server, "bus_bind")? "_bind": "",
                                 herd_config_filename (config));
        freen (error);
        herd_bus_destroy (&self);
        return NULL;
    }
    zlistx_t *names = herd_config_neighbours (config, server);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        herd_peer_t *peer = herd_peer_new (config, name, keys, error_p);
        if (!peer) {
            herd_bus_destroy (&self);
            return NULL;
        }
        zlistx_add_end (self->peers, peer);
    }
    zsys_info ("bus: publishing on %s, heartbeat every %d ms", bind, self->heartbeat);
    return self;
}

void
herd_bus_destroy (herd_bus_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_bus_t *self = *self_p;
        zlistx_destroy (&self->peers);
        herd_xpub_destroy (&self->pub);
        herd_bus_batch_destroy (&self->batch);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

//  Heartbeat out; each peer checks its silence and its catch-up
static int
s_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_bus_t *self = (herd_bus_t *) arg;
    //  What a pass left unsent goes first: the beat repeats its number
    herd_bus_flush (self);
    //  A publisher drops rather than blocks; no need for a timeout
    void *handle = herd_xpub_handle (self->pub);
    if (handle)
        herd_bus_msg_send_heartbeat (handle, self->server, self->sequence);
    //  Lines logged outside a client pass or a stream batch (catch-up)
    //  wait at most a beat
    if (self->traffic)
        herd_traffic_flush (self->traffic);
    int64_t now = zclock_mono ();
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        herd_peer_check (peer, now);
    return 0;
}

//  A peer took a batch from its stream or a catch-up chunk: what it made
//  us accept goes out now, in one message
static void
s_peer_pass_done (void *arg)
{
    herd_bus_flush ((herd_bus_t *) arg);
}

void
herd_bus_attach (herd_bus_t *self, zloop_t *loop, herd_peer_accept_fn *accept, void *arg)
{
    assert (self);
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        herd_peer_attach (peer, loop, accept, arg, s_peer_pass_done, self);
    herd_xpub_attach (self->pub, loop);
    zloop_timer (loop, self->heartbeat, 0, s_heartbeat, self);
}

void
herd_bus_set_store (herd_bus_t *self, herd_store_t *store)
{
    assert (self);
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        herd_peer_set_store (peer, store);
}

void
herd_bus_publish (herd_bus_t *self, const herd_at_t *at)
{
    assert (self);
    assert (at);
    if (herd_bus_batch_add (self->batch, at->line.start, at->line.size)) {
        self->published++;
        return;
    }
    herd_bus_flush (self);
    if (herd_bus_batch_add (self->batch, at->line.start, at->line.size))
        self->published++;
    else {
        char sample [200];
        zsys_warning ("bus: an AT line of %zu bytes is too big for the bus; not flooded: %s",
                      at->line.size, herd_log_sample (at->line.start, at->line.size, sample, sizeof sample));
    }
}

void
herd_bus_flush (herd_bus_t *self)
{
    assert (self);
    if (!herd_bus_batch_count (self->batch))
        return;
    //  Never blocks; it drops for subscribers past their HWM, or all while
    //  the socket is bound again, who see the number skipped and catch up
    if (herd_bus_batch_send (self->batch, herd_xpub_handle (self->pub), ++self->sequence) == -1)
        zsys_warning ("bus: could not publish batch %" PRIu64 ": %s", self->sequence,
                      zmq_strerror (zmq_errno ()));
}

void
herd_bus_set_traffic (herd_bus_t *self, herd_traffic_t *traffic)
{
    assert (self);
    self->traffic = traffic;
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        herd_peer_set_traffic (peer, traffic);
}

bool
herd_bus_caught_up (herd_bus_t *self)
{
    assert (self);
    bool anyone_to_ask = false;
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers)) {
        if (herd_peer_completed (peer))
            return true;
        anyone_to_ask |= herd_peer_syncable (peer);
    }
    return !anyone_to_ask;
}

json_t *
herd_bus_links (herd_bus_t *self)
{
    assert (self);
    json_t *links = json_object ();
    int64_t now = zclock_mono ();
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        json_object_set_new (links, herd_peer_name (peer), herd_peer_link (peer, now));
    return links;
}

json_t *
herd_bus_catch_ups (herd_bus_t *self)
{
    assert (self);
    json_t *catch_ups = json_object ();
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        json_object_set_new (catch_ups, herd_peer_name (peer), herd_peer_catch_up (peer));
    return catch_ups;
}

uint64_t
herd_bus_heard (herd_bus_t *self)
{
    assert (self);
    uint64_t heard = 0;
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        heard += herd_peer_heard (peer);
    return heard;
}

uint64_t
herd_bus_wrong_sender (herd_bus_t *self)
{
    assert (self);
    uint64_t dropped = 0;
    for (herd_peer_t *peer = (herd_peer_t *) zlistx_first (self->peers); peer;
         peer = (herd_peer_t *) zlistx_next (self->peers))
        dropped += herd_peer_wrong_sender (peer);
    return dropped;
}

uint64_t
herd_bus_rebinds (herd_bus_t *self)
{
    assert (self);
    return herd_xpub_rebinds (self->pub);
}

uint64_t
herd_bus_published (herd_bus_t *self)
{
    assert (self);
    return self->published;
}

uint64_t
herd_bus_batches (herd_bus_t *self)
{
    assert (self);
    return self->sequence;
}

//  --------------------------------------------------------------------------
//  Selftest: two buses linked over inproc, with nobody to catch up from

static int s_received = 0;
static char s_last [256];

static int
s_on_update (herd_peer_t *peer, const char *line, size_t size, bool caught_up, void *arg)
{
    (void) arg;
    assert (streq (herd_peer_name (peer), "A"));
    assert (!caught_up);
    assert (size < sizeof s_last);
    memcpy (s_last, line, size);
    s_last [size] = 0;
    s_received++;
    return HERD_STORE_STORED;
}

static void
s_publish (herd_bus_t *bus, const char *line)
{
    herd_at_t at;
    assert (herd_protocol_parse_at (line, strlen (line), &at) == 0);
    herd_bus_publish (bus, &at);
    herd_bus_flush (bus);
}

void
herd_bus_test (bool verbose)
{
    printf (" * herd_bus: ");
    if (verbose)
        printf ("\n");
    const char *text =
        "herd\n"
        "    log_traffic = 0\n"
        "    security = off\n"
        "bus\n"
        "    heartbeat = 50\n"
        "servers\n"
        "    A\n"
        "        client = 127.0.0.1:1\n"
        "        bus = inproc://herd-bus-test-a\n"
        "        neighbours = B\n"
        "    B\n"
        "        client = 127.0.0.1:2\n"
        "        bus = inproc://herd-bus-test-b\n"
        "        neighbours = A\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "bus-test", &error);
    assert (config);
    herd_keys_t *keys = herd_keys_new (config, "A", &error);
    assert (keys);
    herd_bus_t *a = herd_bus_new (config, "A", keys, &error);
    assert (a);
    herd_bus_t *b = herd_bus_new (config, "B", keys, &error);
    assert (b);
    //  Binding the same endpoint twice fails with a clear message
    herd_bus_t *again = herd_bus_new (config, "A", keys, &error);
    assert (!again);
    assert (strstr (error, "cannot bind the bus to inproc://herd-bus-test-a: "));
    assert (strstr (error, " (servers/A/bus in bus-test)"));
    freen (error);
    //  No neighbour has a sync endpoint: nobody to wait for
    assert (herd_bus_caught_up (b));

    zloop_t *loop = zloop_new ();
    herd_bus_attach (b, loop, s_on_update, NULL);
    //  Slow joiner: publish until B has seen one, as tests must
    const char *line = "AT A +0.1 kiwi +34-118 100";
    for (int attempt = 0; attempt < 200 && !s_received; attempt++) {
        s_publish (a, line);
        herd_loop_run_for (loop, 10);
    }
    assert (s_received > 0);
    assert (streq (s_last, line));
    //  A message that is no batch (three frames, the second an AT line
    //  newer than anything held) is dropped whole; the link goes on
    int received = s_received;
    const char *unbatched = "AT A +0.1 pear +34-118 200";
    assert (zstr_sendx (herd_xpub_handle (a->pub), "pear", unbatched, "999", NULL) == 0);
    herd_loop_run_for (loop, 50);
    assert (s_received == received);
    s_publish (a, "AT A +0.1 fig +34-118 300");
    for (int round = 0; round < 100 && s_received == received; round++)
        herd_loop_run_for (loop, 10);
    assert (s_received == received + 1 && streq (s_last, "AT A +0.1 fig +34-118 300"));
    //  A pass's updates go in one batch, in order
    received = s_received;
    uint64_t batches = herd_bus_batches (a);
    for (int index = 0; index < 10; index++) {
        char text [80];
        snprintf (text, sizeof text, "AT A +0.1 batched%d +34-118 100", index);
        herd_at_t at;
        assert (herd_protocol_parse_at (text, strlen (text), &at) == 0);
        herd_bus_publish (a, &at);
    }
    herd_bus_flush (a);
    herd_bus_flush (a);                 //  Nothing left: nothing sent
    assert (herd_bus_batches (a) == batches + 1);
    for (int round = 0; round < 100 && s_received < received + 10; round++)
        herd_loop_run_for (loop, 10);
    assert (s_received == received + 10);
    assert (streq (s_last, "AT A +0.1 batched9 +34-118 100"));
    json_t *links = herd_bus_links (b);
    json_t *link = json_object_get (links, "A");
    assert (json_integer_value (json_object_get (link, "sequence")) == (json_int_t) a->sequence);
    assert (streq (json_string_value (json_object_get (link, "state")), "live"));
    json_decref (links);
    assert (herd_bus_batches (a) == a->sequence && herd_bus_published (a) >= 11);

    //  B's subscriptions are read as they come, not kept for us
    zsock_t *listener = zsock_new_sub (">inproc://herd-bus-test-b", "kiwi");
    assert (listener);
    for (int attempt = 0; attempt < 10; attempt++)
        herd_loop_run_for (loop, 20);
    assert (herd_xpub_subscriptions (b->pub) == 2);    //  A's "" and "kiwi"
    assert (!(zsock_events (herd_xpub_handle (b->pub)) & ZMQ_POLLIN));
    zsock_destroy (&listener);

    //  Silence: A gone quiet for three heartbeats is a lost link
    herd_bus_destroy (&a);
    for (int attempt = 0; attempt < 30; attempt++)
        herd_loop_run_for (loop, 10);
    links = herd_bus_links (b);
    link = json_object_get (links, "A");
    assert (json_is_true (json_object_get (link, "silent")));
    assert (streq (json_string_value (json_object_get (link, "state")), "lost"));
    json_decref (links);
    herd_bus_destroy (&b);
    herd_reader_collect ();
    herd_keys_destroy (&keys);
    zloop_destroy (&loop);
    herd_config_destroy (&config);
    printf ("OK\n");
}
