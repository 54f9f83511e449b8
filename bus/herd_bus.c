//  bus/herd_bus.c: PUB/SUB flooding of updates between neighbours, with
//  sequence numbers, heartbeats and socket monitors to see lost updates.

#include "herd_classes.h"

//  Messages taken from one SUB per wake-up, so one busy neighbour cannot
//  starve the clients sharing the loop
#define S_BATCH_MAX     256
//  Heartbeats missed before a link counts as lost
#define S_SILENCE_BEATS 3

typedef struct {
    herd_bus_t *bus;            //  Parent, not owned
    char *name;                 //  Neighbour's server name
    zsock_t *sub;               //  SUB connected to its PUB
    zactor_t *monitor;          //  zmonitor on sub: CONNECTED, DISCONNECTED
    bool connected;             //  TCP link up, as the monitor says
    bool lost;                  //  Silent past S_SILENCE_BEATS heartbeats
    bool needs_sync;            //  Catch up on its next message
    bool sequence_known;        //  We have seen one of its numbers
    uint64_t sequence;          //  Its last update number we saw
    int64_t heard;              //  zclock_mono of its last message, 0 never
} s_neighbour_t;

struct _herd_bus_t {
    char *server;               //  Our own name
    zsock_t *pub;               //  Bound; neighbours and monitors connect
    uint64_t sequence;          //  Updates we published
    zlistx_t *neighbours;       //  s_neighbour_t items (owned)
    herd_bus_update_fn *update; //  Where received updates go
    herd_bus_resync_fn *resync; //  Where "catch up now" goes
    void *arg;
    int heartbeat;              //  msecs between heartbeats
    bool log_traffic;           //  Log every update in and out
};

static void
s_neighbour_destroy (void **item_p)
{
    s_neighbour_t *neighbour = (s_neighbour_t *) *item_p;
    if (neighbour) {
        zactor_destroy (&neighbour->monitor);
        zsock_destroy (&neighbour->sub);
        freen (neighbour->name);
        freen (neighbour);
        *item_p = NULL;
    }
}

herd_bus_t *
herd_bus_new (herd_config_t *config, const char *server, char **error_p)
{
    assert (config);
    assert (error_p);
    herd_bus_t *self = (herd_bus_t *) zmalloc (sizeof (herd_bus_t));
    self->server = strdup (server);
    self->log_traffic = herd_config_number (config, "herd/log_traffic");
    self->heartbeat = (int) herd_config_number (config, "bus/heartbeat");
    self->neighbours = zlistx_new ();
    zlistx_set_destructor (self->neighbours, s_neighbour_destroy);
    int hwm = (int) herd_config_number (config, "bus/hwm");

    self->pub = zsock_new (ZMQ_PUB);
    assert (self->pub);
    zsock_set_sndhwm (self->pub, hwm);
    zsock_set_linger (self->pub, 0);
    //  No ZMTP heartbeat on this side: a subscriber that stalls (a pause,
    //  SIGSTOP) is not cut off while it still has our messages to read, it
    //  just loses what passes the HWM, and catches up. (Cutting it then
    //  also trips libzmq 4.3's "!_more" assertion in fq.cpp, issue #3663.)
    //  The subscriber side pings, and drops links that went silent.
    const char *bind = herd_config_bus_bind (config, server);
    if (zsock_bind (self->pub, "%s", bind) == -1) {
        *error_p = zsys_sprintf ("cannot bind bus PUB to %s: %s", bind, zmq_strerror (zmq_errno ()));
        herd_bus_destroy (&self);
        return NULL;
    }
    zlistx_t *names = herd_config_neighbours (config, server);
    const char *name = (const char *) zlistx_first (names);
    for (; name; name = (const char *) zlistx_next (names)) {
        s_neighbour_t *neighbour = (s_neighbour_t *) zmalloc (sizeof (s_neighbour_t));
        neighbour->bus = self;
        neighbour->name = strdup (name);
        neighbour->needs_sync = true;       //  We start knowing nothing
        neighbour->sub = zsock_new (ZMQ_SUB);
        assert (neighbour->sub);
        zsock_set_rcvhwm (neighbour->sub, hwm);
        zsock_set_maxmsgsize (neighbour->sub, HERD_BUS_MAXMSGSIZE);
        zsock_set_linger (neighbour->sub, 0);
        zsock_set_rcvtimeo (neighbour->sub, HERD_LOOP_RCVTIMEO);
        //  ZMTP heartbeats close a TCP link that went silent (a partition
        //  drops packets, it sends no reset), so ZeroMQ reconnects
        zsock_set_heartbeat_ivl (neighbour->sub, self->heartbeat);
        zsock_set_heartbeat_timeout (neighbour->sub, self->heartbeat * S_SILENCE_BEATS);
        //  A SYN into a partition is dropped, not refused: retry soon
        zsock_set_connect_timeout (neighbour->sub, 2 * self->heartbeat);
        zsock_set_subscribe (neighbour->sub, "");
        neighbour->monitor = zactor_new (zmonitor, neighbour->sub);
        zstr_sendx (neighbour->monitor, "LISTEN", "CONNECTED", "DISCONNECTED", NULL);
        zstr_send (neighbour->monitor, "START");
        zsock_wait (neighbour->monitor);
        const char *endpoint = herd_config_bus_endpoint (config, name);
        //  Connect succeeds whether or not the neighbour is up; ZeroMQ
        //  reconnects by itself when it comes (back)
        if (zsock_connect (neighbour->sub, "%s", endpoint) == -1) {
            *error_p = zsys_sprintf ("cannot connect bus SUB to %s at %s: %s",
                                     name, endpoint, zmq_strerror (zmq_errno ()));
            s_neighbour_destroy ((void **) &neighbour);
            herd_bus_destroy (&self);
            return NULL;
        }
        zsys_info ("bus: subscribed to %s at %s", name, endpoint);
        zlistx_add_end (self->neighbours, neighbour);
    }
    zsys_info ("bus: publishing on %s, heartbeat every %d ms", zsock_endpoint (self->pub),
               self->heartbeat);
    return self;
}

void
herd_bus_destroy (herd_bus_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_bus_t *self = *self_p;
        zlistx_destroy (&self->neighbours);
        zsock_destroy (&self->pub);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

static bool
s_parse_sequence (zframe_t *frame, uint64_t *sequence)
{
    if (!frame || zframe_size (frame) == 0 || zframe_size (frame) > 20)
        return false;
    char text [21];
    memcpy (text, zframe_data (frame), zframe_size (frame));
    text [zframe_size (frame)] = 0;
    char *end;
    *sequence = strtoull (text, &end, 10);
    return *end == 0;
}

//  Checks a neighbour's numbering: an update must be the next number, a
//  heartbeat must repeat the last. Returns true if something was missed.
static bool
s_check_sequence (s_neighbour_t *neighbour, uint64_t sequence, bool is_update)
{
    uint64_t expected = neighbour->sequence + (is_update? 1: 0);
    bool gap = neighbour->sequence_known && sequence != expected;
    if (gap)
        zsys_warning ("bus: gap in %s's updates (expected %s%" PRIu64 ", got %" PRIu64 "): catching up",
                      neighbour->name, is_update? "": "heartbeat at ", expected, sequence);
    neighbour->sequence = sequence;
    neighbour->sequence_known = true;
    return gap;
}

static void
s_handle_message (s_neighbour_t *neighbour, zmsg_t *msg)
{
    herd_bus_t *self = neighbour->bus;
    zframe_t *first = zmsg_first (msg);
    zframe_t *second = zmsg_next (msg);
    zframe_t *third = zmsg_next (msg);
    uint64_t sequence = 0;
    char sample [200];
    if (first && zframe_size (first) == 0) {
        //  Control: [""][HEARTBEAT][server][sequence]
        zframe_t *fourth = zmsg_next (msg);
        if (!second || !zframe_streq (second, "HEARTBEAT") || !s_parse_sequence (fourth, &sequence)) {
            zsys_warning ("bus: dropped malformed control message from %s", neighbour->name);
            return;
        }
        if (s_check_sequence (neighbour, sequence, false))
            neighbour->needs_sync = true;
        return;
    }
    herd_at_t at;
    if (!second || zframe_size (second) == 0
    ||  herd_protocol_parse_at ((char *) zframe_data (second), zframe_size (second), &at)
    ||  at.client.size != zframe_size (first)
    ||  memcmp (at.client.start, zframe_data (first), at.client.size)) {
        zsys_warning ("bus: dropped malformed update from %s: %s", neighbour->name,
                      second? herd_log_sample ((char *) zframe_data (second), zframe_size (second),
                                               sample, sizeof sample): "(one frame)");
        return;
    }
    //  The number is optional, for publishers that are not herd servers
    if (s_parse_sequence (third, &sequence) && s_check_sequence (neighbour, sequence, true))
        neighbour->needs_sync = true;
    char *text = zframe_strdup (second);
    if (self->log_traffic)
        zsys_info ("bus: received from %s: %s", neighbour->name, text);
    if (self->update)
        self->update (neighbour->name, text, zframe_size (second), self->arg);
    freen (text);
}

//  Takes what is waiting on one neighbour's SUB
static int
s_receive (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    s_neighbour_t *neighbour = (s_neighbour_t *) arg;
    herd_bus_t *self = neighbour->bus;
    for (int count = 0; count < S_BATCH_MAX; count++) {
        //  ZMQ_EVENTS says whether a whole message waits, so recv won't block
        if (!(zsock_events (neighbour->sub) & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv (neighbour->sub);
        if (!msg)
            break;
        neighbour->heard = zclock_mono ();
        if (neighbour->lost) {
            zsys_info ("bus: %s is heard again", neighbour->name);
            neighbour->lost = false;
        }
        bool first_contact = !neighbour->sequence_known;
        s_handle_message (neighbour, msg);
        zmsg_destroy (&msg);
        //  A message proves our subscription is live: catch up now
        if (neighbour->needs_sync) {
            neighbour->needs_sync = false;
            if (self->resync)
                self->resync (neighbour->name, first_contact? "first contact": "stream resumed",
                              self->arg);
        }
    }
    return 0;
}

static int
s_monitor_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_neighbour_t *neighbour = (s_neighbour_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    char *event = msg? zmsg_popstr (msg): NULL;
    if (event && streq (event, "CONNECTED")) {
        neighbour->connected = true;
        zsys_info ("bus: connected to %s", neighbour->name);
    }
    else
    if (event && streq (event, "DISCONNECTED")) {
        neighbour->connected = false;
        //  What it publishes until we are back is lost to us
        neighbour->needs_sync = true;
        zsys_warning ("bus: disconnected from %s; will catch up when it is back", neighbour->name);
    }
    freen (event);
    zmsg_destroy (&msg);
    return 0;
}

//  Heartbeat out; silence in counts as a lost link
static int
s_heartbeat (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_bus_t *self = (herd_bus_t *) arg;
    char sequence [24];
    snprintf (sequence, sizeof sequence, "%" PRIu64, self->sequence);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, "HEARTBEAT");
    zmsg_addstr (msg, self->server);
    zmsg_addstr (msg, sequence);
    //  A PUB socket drops rather than blocks; no need for a timeout
    zmsg_send (&msg, self->pub);
    int64_t now = zclock_mono ();
    s_neighbour_t *neighbour = (s_neighbour_t *) zlistx_first (self->neighbours);
    for (; neighbour; neighbour = (s_neighbour_t *) zlistx_next (self->neighbours))
        if (neighbour->heard && !neighbour->lost
        &&  now - neighbour->heard > S_SILENCE_BEATS * self->heartbeat) {
            neighbour->lost = true;
            neighbour->needs_sync = true;
            zsys_warning ("bus: nothing from %s for %" PRId64 " ms: link lost, will catch up when it is back",
                          neighbour->name, now - neighbour->heard);
        }
    return 0;
}

void
herd_bus_attach (herd_bus_t *self, zloop_t *loop, herd_bus_update_fn *update,
                 herd_bus_resync_fn *resync, void *arg)
{
    assert (self);
    self->update = update;
    self->resync = resync;
    self->arg = arg;
    s_neighbour_t *neighbour = (s_neighbour_t *) zlistx_first (self->neighbours);
    for (; neighbour; neighbour = (s_neighbour_t *) zlistx_next (self->neighbours)) {
        zloop_reader (loop, neighbour->sub, s_receive, neighbour);
        zloop_reader (loop, (zsock_t *) neighbour->monitor, s_monitor_event, neighbour);
    }
    zloop_timer (loop, self->heartbeat, 0, s_heartbeat, self);
}

int
herd_bus_publish (herd_bus_t *self, const char *client, size_t client_size,
                  const char *line, size_t size)
{
    assert (self);
    void *handle = zsock_resolve (self->pub);
    char sequence [24];
    int sequence_size = snprintf (sequence, sizeof sequence, "%" PRIu64, ++self->sequence);
    //  PUB never blocks; it drops for subscribers past their HWM
    if (zmq_send (handle, client, client_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (handle, line, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (handle, sequence, sequence_size, ZMQ_DONTWAIT) == -1) {
        zsys_warning ("bus: could not publish update: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    if (self->log_traffic)
        zsys_info ("bus: published: %.*s", (int) size, line);
    return 0;
}

void
herd_bus_expect_resync (herd_bus_t *self, const char *neighbour_name)
{
    assert (self);
    s_neighbour_t *neighbour = (s_neighbour_t *) zlistx_first (self->neighbours);
    for (; neighbour; neighbour = (s_neighbour_t *) zlistx_next (self->neighbours))
        if (streq (neighbour->name, neighbour_name))
            neighbour->needs_sync = true;
}

json_t *
herd_bus_links (herd_bus_t *self)
{
    assert (self);
    json_t *links = json_object ();
    int64_t now = zclock_mono ();
    s_neighbour_t *neighbour = (s_neighbour_t *) zlistx_first (self->neighbours);
    for (; neighbour; neighbour = (s_neighbour_t *) zlistx_next (self->neighbours))
        json_object_set_new (links, neighbour->name, json_pack ("{s:b, s:b, s:o, s:I}",
            "connected", neighbour->connected,
            "lost", neighbour->lost,
            "heard_ms_ago", neighbour->heard? json_integer (now - neighbour->heard): json_null (),
            "sequence", (json_int_t) neighbour->sequence));
    return links;
}

uint64_t
herd_bus_published (herd_bus_t *self)
{
    assert (self);
    return self->sequence;
}

//  --------------------------------------------------------------------------
//  Selftest: two buses linked over inproc

static int s_received = 0;
static int s_resyncs = 0;
static char s_last [256];

static void
s_on_update (const char *neighbour, const char *line, size_t size, void *arg)
{
    (void) arg;
    (void) neighbour;
    assert (size < sizeof s_last);
    memcpy (s_last, line, size + 1);
    s_received++;
}

static void
s_on_resync (const char *neighbour, const char *why, void *arg)
{
    (void) arg;
    (void) why;
    assert (streq (neighbour, "A"));
    s_resyncs++;
}

static int
s_stop_loop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;                  //  Ends this round of zloop_start
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
    herd_bus_t *a = herd_bus_new (config, "A", &error);
    assert (a);
    herd_bus_t *b = herd_bus_new (config, "B", &error);
    assert (b);
    //  Binding the same endpoint twice fails with a clear message
    herd_bus_t *again = herd_bus_new (config, "A", &error);
    assert (!again);
    assert (strstr (error, "cannot bind bus PUB to inproc://herd-bus-test-a"));
    freen (error);

    zloop_t *loop = zloop_new ();
    herd_bus_attach (b, loop, s_on_update, s_on_resync, NULL);
    //  Slow joiner: publish until B has seen one, as tests must
    const char *line = "AT A +0.1 kiwi +34-118 100";
    for (int attempt = 0; attempt < 200 && !s_received; attempt++) {
        herd_bus_publish (a, "pear", 4, line, strlen (line));  //  Id mismatch: dropped
        herd_bus_publish (a, "kiwi", 4, line, strlen (line));
        zloop_timer (loop, 10, 1, s_stop_loop, NULL);
        zloop_start (loop);
    }
    assert (s_received > 0);
    assert (streq (s_last, line));
    //  The first message B heard asked for a catch-up, once
    assert (s_resyncs == 1);
    //  A gap in A's numbers asks for another
    a->sequence += 5;
    herd_bus_publish (a, "kiwi", 4, line, strlen (line));
    for (int attempt = 0; attempt < 100 && s_resyncs == 1; attempt++) {
        zloop_timer (loop, 10, 1, s_stop_loop, NULL);
        zloop_start (loop);
    }
    assert (s_resyncs == 2);
    json_t *links = herd_bus_links (b);
    assert (json_integer_value (json_object_get (json_object_get (links, "A"), "sequence"))
            == (json_int_t) a->sequence);
    json_decref (links);
    //  Silence: A gone quiet for three heartbeats is a lost link
    herd_bus_destroy (&a);
    for (int attempt = 0; attempt < 30; attempt++) {
        zloop_timer (loop, 10, 1, s_stop_loop, NULL);
        zloop_start (loop);
    }
    links = herd_bus_links (b);
    assert (json_is_true (json_object_get (json_object_get (links, "A"), "lost")));
    json_decref (links);
    zloop_destroy (&loop);
    herd_bus_destroy (&b);
    herd_config_destroy (&config);
    printf ("OK\n");
}
