//  bus/herd_peer.c: one neighbour: its stream, its catch-up, its state.

#include "bus/herd_bus_layer.h"

//  Batches taken from one SUB per wake-up, so one busy neighbour cannot
//  starve the clients sharing the loop
#define S_BATCH_MAX     16
//  Heartbeats missed before a link counts as silent
#define S_SILENCE_BEATS 3
//  A catch-up with no progress this long is given up, and asked again
#define S_STALL_MSECS   5000
//  Heartbeats with nothing heard before the link is rebuilt from new
//  sockets, and between rebuilds while it stays silent
#define S_REBUILD_BEATS 5
#define S_REBUILD_AGAIN_BEATS 30
//  Catch-ups failed in a row (stalled, or not even asked) before the link
//  is rebuilt though its stream is heard: its sync connecter may be one
//  that libzmq gave up on
#define S_CATCH_UP_FAILURES 2

static const char *s_state_names [] = { "lost", "syncing", "again", "live" };

struct _herd_peer_t {
    char *name;                 //  The neighbour's server name
    herd_ratelimit_t *log;      //  What it makes us log, limited (owned)
    uint64_t wrong_sender;      //  Messages headed with another server's name
    uint64_t foreign_format;    //  The bus format it speaks, when not ours (0: ours)
    herd_peer_state_t state;    //  Where our copy of its updates stands
    int heartbeat;              //  msecs between its heartbeats
    //  How to make its link again: a link is rebuilt from scratch when it
    //  stays silent, whatever libzmq did (a connecter it gave up on after
    //  a mechanism mismatch never comes back by itself)
    char *bus_endpoint;         //  Its bus, as the config says
    char *sync_endpoint;        //  Its sync endpoint, or NULL
    int hwm;                    //  bus/hwm
    herd_keys_t *keys;          //  Borrowed
    zloop_t *loop;              //  Once attached (borrowed)
    int64_t built;              //  zclock_mono when the link was last made
    uint64_t rebuilds;          //  Links made again since start
    uint64_t rebuilds_silent;   //  Of those, since it was last heard
    size_t catch_up_failures;   //  In a row, since the last catch-up done
    //  Its stream
    zsock_t *sub;               //  SUB connected to its bus XPUB
    zactor_t *monitor;          //  zmonitor on sub: CONNECTED, DISCONNECTED
    bool connected;             //  TCP link up, as the monitor says
    bool silent;                //  Nothing heard for S_SILENCE_BEATS beats
    bool sequence_known;        //  We have seen one of its numbers
    uint64_t sequence;          //  Its last update number we saw
    int64_t heard;              //  zclock_mono of its last message, 0 never
    //  Its catch-up
    herd_catchup_t *catchup;    //  To its sync endpoint, or NULL (none)
    size_t completed;           //  Catch-ups done since start
    uint64_t streamed;          //  Updates taken from its stream, newer or not
    herd_reader_t *stream_reader;   //  Once attached: sub, monitor
    herd_reader_t *monitor_reader;
    herd_peer_accept_fn *accept;
    herd_store_t *store;        //  Where accepted lines go, to prefetch (borrowed)
    void *arg;
    herd_peer_done_fn *done;    //  After each batch handed to accept
    void *done_arg;
    herd_traffic_t *traffic;    //  Every update in, or NULL (borrowed)
    char *traffic_head;         //  "bus: received from <name>: ", made once
};

//  A catch-up is asked or under way (asked once more after a gap in it)
static bool
s_syncing (herd_peer_t *self)
{
    return self->state == HERD_PEER_SYNCING || self->state == HERD_PEER_AGAIN;
}

uint64_t
herd_peer_heard (herd_peer_t *self)
{
    assert (self);
    return self->streamed;
}

uint64_t
herd_peer_wrong_sender (herd_peer_t *self)
{
    assert (self);
    return self->wrong_sender;
}

void
herd_peer_set_traffic (herd_peer_t *self, herd_traffic_t *traffic)
{
    assert (self);
    self->traffic = traffic;
}

//  Makes the link's sockets: the SUB and its monitor, the catch-up
//  client. 0, or -1 and *error_p.
static int
s_link_make (herd_peer_t *self, char **error_p)
{
    self->sub = zsock_new (ZMQ_SUB);
    assert (self->sub);
    zsock_set_rcvhwm (self->sub, self->hwm);
    zsock_set_maxmsgsize (self->sub, HERD_BUS_MAXMSGSIZE);
    zsock_set_linger (self->sub, 0);
    zsock_set_rcvtimeo (self->sub, HERD_LOOP_RCVTIMEO);
    //  No ZMTP heartbeats on this link. They would replace the connection
    //  after a silence, and a SUB whose input stopped on a full pipe (we
    //  fell behind a busy neighbour) can then meet libzmq 4.3's
    //  "_input_stopped" assertion (libzmq issue 3937). Silence is the
    //  herd's own business instead: three missed heartbeats make the peer
    //  LOST (herd_peer_check), five make a new link. A dead host is found
    //  by TCP keepalive, in the kernel: probes after 5 s idle, 5
    //  unanswered 1 s apart close the link, and ZeroMQ reconnects.
    zsock_set_tcp_keepalive (self->sub, 1);
    zsock_set_tcp_keepalive_idle (self->sub, 5);
    zsock_set_tcp_keepalive_intvl (self->sub, 1);
    zsock_set_tcp_keepalive_cnt (self->sub, 5);
    //  A SYN into a partition is dropped, not refused: retry soon
    zsock_set_connect_timeout (self->sub, 2 * self->heartbeat);
    zsock_set_subscribe (self->sub, "");
    //  Only the neighbour's own key completes the handshake: an impostor
    //  bound at its address while it is down is never heard
    if (herd_keys_apply_client (self->keys, self->sub, self->name, error_p))
        return -1;
    self->monitor = zactor_new (zmonitor, self->sub);
    if (!self->monitor) {
        *error_p = zsys_sprintf ("cannot watch the bus link to %s (interrupted)", self->name);
        return -1;
    }
    zstr_sendx (self->monitor, "LISTEN", "CONNECTED", "DISCONNECTED", NULL);
    zstr_send (self->monitor, "START");
    zsock_wait (self->monitor);
    //  Connect succeeds whether or not the neighbour is up; ZeroMQ
    //  reconnects by itself when it comes (back)
    if (zsock_connect (self->sub, "%s", self->bus_endpoint) == -1) {
        *error_p = zsys_sprintf ("cannot connect bus SUB to %s at %s: %s",
                                 self->name, self->bus_endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    if (self->sync_endpoint
    &&  !(self->catchup = herd_catchup_new (self->name, self->sync_endpoint, self->keys, error_p)))
        return -1;
    self->built = zclock_mono ();
    return 0;
}

//  Takes the link's sockets out of the loop and destroys them; running:
//  from a handler of that loop
static void
s_link_break (herd_peer_t *self, bool running)
{
    void (*end) (herd_reader_t **) = running? herd_reader_retire: herd_reader_destroy;
    end (&self->stream_reader);
    end (&self->monitor_reader);
    if (self->catchup && running)
        herd_catchup_retire (self->catchup);
    herd_catchup_destroy (&self->catchup);
    zactor_destroy (&self->monitor);
    zsock_destroy (&self->sub);
    self->connected = false;
}

static int s_handle_stream (zloop_t *loop, zsock_t *reader, void *arg);
static int s_handle_monitor (zloop_t *loop, zsock_t *reader, void *arg);
static int s_catchup_line (const char *line, size_t size, void *arg);
static void s_catchup_merged (void *arg);
static void s_catchup_done (void *arg);
static void s_catchup_failed (const char *why, void *arg);

static void
s_link_attach (herd_peer_t *self)
{
    self->stream_reader = herd_reader_new (self->loop, self->sub, s_handle_stream, self);
    self->monitor_reader = herd_reader_new (self->loop, self->monitor, s_handle_monitor, self);
    if (self->catchup) {
        herd_catchup_handler_t handler = {
            s_catchup_line, s_catchup_merged, s_catchup_done, s_catchup_failed, self
        };
        herd_catchup_attach (self->catchup, self->loop, &handler);
    }
}

herd_peer_t *
herd_peer_new (herd_config_t *config, const char *name, herd_keys_t *keys, char **error_p)
{
    assert (config && name && keys && error_p);
    herd_peer_t *self = (herd_peer_t *) zmalloc (sizeof (herd_peer_t));
    self->name = strdup (name);
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, 1);
    self->traffic_head = zsys_sprintf ("bus: from %s: ", name);
    self->state = HERD_PEER_LOST;           //  We start knowing nothing
    self->heartbeat = (int) herd_config_number (config, "bus/heartbeat");
    self->hwm = (int) herd_config_number (config, "bus/hwm");
    self->keys = keys;
    self->bus_endpoint = strdup (herd_config_bus_endpoint (config, name));
    const char *sync = herd_config_server_endpoint (config, name, "sync");
    self->sync_endpoint = sync? strdup (sync): NULL;
    if (s_link_make (self, error_p)) {
        herd_peer_destroy (&self);
        return NULL;
    }
    zsys_info ("bus: subscribed to %s at %s", name, self->bus_endpoint);
    if (!sync)
        zsys_warning ("sync: %s has no sync endpoint; cannot catch up with it", name);
    return self;
}

void
herd_peer_destroy (herd_peer_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_peer_t *self = *self_p;
        s_link_break (self, false);
        freen (self->bus_endpoint);
        freen (self->sync_endpoint);
        freen (self->traffic_head);
        freen (self->name);
        herd_ratelimit_destroy (&self->log);
        freen (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  The state machine, as data: every move the peer makes is a row of
//  s_moves, found by (state, event); a pair with no row is a bug (an
//  event that cannot happen in that state).

typedef enum {
    S_SYNC_SENT,                //  Heard while LOST: a SYNC went out
    S_SYNC_NOT_TAKEN,           //  Heard while LOST: the link did not take the SYNC
    S_NO_SYNC_ENDPOINT,         //  Heard while LOST: nothing to catch up from
    S_UPDATES_LOST,             //  A gap, silence, or the link down
    S_DONE,                     //  The snapshot's DONE
    S_CATCH_UP_FAILED,          //  No progress for S_STALL_MSECS, or MORE not taken
    S_REMADE_SILENT,            //  New sockets after S_REBUILD_BEATS of silence
    S_REMADE_UNANSWERED,        //  New sockets after S_CATCH_UP_FAILURES failed catch-ups
    S_EVENTS
} s_event_t;

typedef struct {
    herd_peer_state_t state;
    s_event_t event;
    herd_peer_state_t next;
} s_move_t;

#define LOST    HERD_PEER_LOST
#define SYNCING HERD_PEER_SYNCING
#define AGAIN   HERD_PEER_AGAIN
#define LIVE    HERD_PEER_LIVE
static const s_move_t s_moves [] = {
    { LOST,    S_SYNC_SENT,          SYNCING },
    { LOST,    S_SYNC_NOT_TAKEN,     LOST },
    { LOST,    S_NO_SYNC_ENDPOINT,   LIVE },
    { LIVE,    S_UPDATES_LOST,       LOST },
    { LOST,    S_UPDATES_LOST,       LOST },
    { SYNCING, S_UPDATES_LOST,       AGAIN },
    { AGAIN,   S_UPDATES_LOST,       AGAIN },
    { SYNCING, S_DONE,               LIVE },
    { AGAIN,   S_DONE,               LOST },
    { SYNCING, S_CATCH_UP_FAILED,    LOST },
    { AGAIN,   S_CATCH_UP_FAILED,    LOST },
    { LIVE,    S_REMADE_SILENT,      LOST },
    { LOST,    S_REMADE_SILENT,      LOST },
    { SYNCING, S_REMADE_SILENT,      LOST },
    { AGAIN,   S_REMADE_SILENT,      LOST },
    { LIVE,    S_REMADE_UNANSWERED,  LIVE },
    { LOST,    S_REMADE_UNANSWERED,  LOST },
    { SYNCING, S_REMADE_UNANSWERED,  LOST },
    { AGAIN,   S_REMADE_UNANSWERED,  LOST },
};
#undef LOST
#undef SYNCING
#undef AGAIN
#undef LIVE
#define S_MOVES (sizeof s_moves / sizeof s_moves [0])

//  Rows taken, so the selftest can tell what it walked
static size_t s_moves_taken [S_MOVES];

static void
s_move (herd_peer_t *self, s_event_t event)
{
    for (size_t row = 0; row < S_MOVES; row++)
        if (s_moves [row].state == self->state && s_moves [row].event == event) {
            self->state = s_moves [row].next;
            s_moves_taken [row]++;
            return;
        }
    zsys_error ("peer %s: no move from %s on event %d", self->name, s_state_names [self->state], event);
    assert (false);
}

//  Updates were (or may have been) lost: gap, silence, link down
static void
s_updates_lost (herd_peer_t *self)
{
    s_move (self, S_UPDATES_LOST);
}

//  A catch-up that cannot go on: ask again when next heard
static void
s_catch_up_failed (herd_peer_t *self, const char *why)
{
    herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                        "sync: catch-up with %s %s; will ask again", self->name, why);
    self->catch_up_failures++;
    if (self->catchup)
        herd_catchup_cancel (self->catchup);    //  Its late answers are stale
    s_move (self, S_CATCH_UP_FAILED);
}

//  The stream is heard while LOST: our subscription is live, catch up now
static void
s_ask_for_snapshot (herd_peer_t *self, const char *why)
{
    if (!self->catchup) {
        s_move (self, S_NO_SYNC_ENDPOINT);
        return;
    }
    if (herd_catchup_ask (self->catchup) == -1) {
        if (!self->catch_up_failures++)
            herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                                "sync: cannot ask %s for a snapshot (%s); will ask again",
                                self->name, zmq_strerror (zmq_errno ()));
        s_move (self, S_SYNC_NOT_TAKEN);    //  The next message retries
        return;
    }
    s_move (self, S_SYNC_SENT);
    herd_ratelimit_log (self->log, self->name, LOG_INFO,
                        "sync: asking %s for a snapshot (%s)", self->name, why);
}

//  --------------------------------------------------------------------------
//  Its stream

//  Checks the neighbour's numbering: a batch must be the next number, a
//  heartbeat must repeat the last. A number skipped means updates lost.
static void
s_check_sequence (herd_peer_t *self, uint64_t sequence, bool is_batch)
{
    uint64_t expected = self->sequence + (is_batch? 1: 0);
    if (self->sequence_known && sequence != expected) {
        herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                            "bus: gap in %s's batches (expected %s%" PRIu64 ", got %" PRIu64 "): catching up",
                            self->name, is_batch? "": "heartbeat at ", expected, sequence);
        s_updates_lost (self);
    }
    self->sequence = sequence;
    self->sequence_known = true;
}

//  Hands a batch's updates to accept, each decoded once; the store's
//  newer-wins compare is the first thing each meets there
//  Lines a batch looks ahead for its clients' buckets: enough lookups in
//  flight to cover a trip to memory, few enough to stay in cache
#define S_PREFETCH_AHEAD 8

static void
s_prefetch (herd_peer_t *self, herd_bus_msg_t *ahead)
{
    herd_field_t line, client;
    if (herd_bus_msg_next (ahead, &line)
    &&  herd_protocol_hint_client (line.start, line.size, &client) == 0)
        herd_store_prefetch (self->store, client);
}

static void
s_handle_batch (herd_peer_t *self, herd_bus_msg_t *batch)
{
    size_t stored = 0, stale = 0, refused = 0, malformed = 0;
    herd_field_t line;
    herd_bus_msg_t ahead = *batch;
    if (self->store)
        for (int count = 0; count < S_PREFETCH_AHEAD; count++)
            s_prefetch (self, &ahead);
    while (herd_bus_msg_next (batch, &line)) {
        if (self->store)
            s_prefetch (self, &ahead);
        self->streamed++;
        int outcome = self->accept? self->accept (self, line.start, line.size, false, self->arg)
                                  : HERD_STORE_STALE;
        if (outcome == HERD_STORE_STORED)
            stored++;
        else
        if (outcome == HERD_STORE_STALE)
            stale++;
        else
        if (outcome == HERD_STORE_INVALID && !malformed++) {
            char sample [200];
            herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                                "bus: dropped a malformed line from %s: %s", self->name,
                                herd_log_sample (line.start, line.size, sample, sizeof sample));
        }
        else
        if (outcome != HERD_STORE_INVALID)
            refused++;
    }
    //  One line a batch: a line an update, at every server, cost the herd
    //  more than the updates themselves
    if (self->traffic) {
        char summary [160];
        int size = snprintf (summary, sizeof summary,
                             "batch %" PRIu64 ": %zu updates, %zu stored and flooded, %zu not newer, "
                             "%zu refused, %zu malformed", batch->sequence, batch->count, stored, stale,
                             refused, malformed);
        herd_traffic_line (self->traffic, self->traffic_head, summary, (size_t) size, "");
    }
}

static void
s_handle_message (herd_peer_t *self, const herd_bus_frame_t *frames, size_t count)
{
    herd_bus_msg_t decoded;
    herd_bus_msg_kind_t kind = herd_bus_msg_decode (frames, count, &decoded);
    bool batch_or_heartbeat = kind == HERD_BUS_MSG_BATCH || kind == HERD_BUS_MSG_HEARTBEAT;
    if (batch_or_heartbeat && !herd_field_is (&decoded.server, self->name)) {
        //  Only this neighbour publishes on its socket: a message in
        //  another server's name is forged, and would spoil its numbering
        self->wrong_sender++;
        herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                            "bus: dropped a message from %s headed with another server's name, %.*s",
                            self->name, (int) (decoded.server.size < 64? decoded.server.size: 64),
                            decoded.server.start);
    }
    else
    if (kind == HERD_BUS_MSG_FOREIGN) {
        //  Another release: nothing it sends can be read. The link is in
        //  a state of its own, said once (and again if it changes)
        if (self->foreign_format != decoded.format)
            zsys_warning ("bus: %s speaks bus format %" PRIu64 ", this server %d (another release): "
                          "nothing it sends is taken until both run one release (docs/operating.md, "
                          "upgrades)", self->name, decoded.format, HERD_BUS_FORMAT);
        self->foreign_format = decoded.format;
    }
    else
    if (kind == HERD_BUS_MSG_HEARTBEAT) {
        if (self->foreign_format)
            zsys_info ("bus: %s speaks this server's bus format again", self->name);
        self->foreign_format = 0;
        s_check_sequence (self, decoded.sequence, false);
    }
    else
    if (kind == HERD_BUS_MSG_BATCH) {
        self->foreign_format = 0;
        s_check_sequence (self, decoded.sequence, true);
        s_handle_batch (self, &decoded);
    }
    else {
        char sample [200];
        herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                            "bus: dropped a malformed message from %s (%s): %s", self->name, decoded.reason,
                            count? herd_log_sample ((const char *) frames [0].data, frames [0].size,
                                                    sample, sizeof sample): "(no frame)");
    }
}

//  Takes what is waiting on the neighbour's SUB
static int
s_handle_stream (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    herd_peer_t *self = (herd_peer_t *) arg;
    void *handle = zsock_resolve (self->sub);
    for (int round = 0; round < S_BATCH_MAX; round++) {
        zmq_msg_t parts [HERD_BUS_MSG_FRAMES_MAX];
        herd_bus_frame_t frames [HERD_BUS_MSG_FRAMES_MAX];
        size_t count = herd_bus_msg_receive (handle, parts, frames);
        if (!count)
            break;
        self->heard = zclock_mono ();
        self->rebuilds_silent = 0;
        if (self->silent) {
            herd_ratelimit_log (self->log, self->name, LOG_INFO,
                                "bus: %s is heard again", self->name);
            self->silent = false;
        }
        bool first_contact = !self->sequence_known;
        s_handle_message (self, frames, count);
        for (size_t index = 0; index < count; index++)
            zmq_msg_close (&parts [index]);
        if (self->state == HERD_PEER_LOST)
            s_ask_for_snapshot (self, first_contact? "first contact": "stream resumed");
    }
    //  What these batches made us accept goes on in one batch of ours
    if (self->done)
        self->done (self->done_arg);
    if (self->traffic)
        herd_traffic_flush (self->traffic);
    return 0;
}

static int
s_handle_monitor (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_peer_t *self = (herd_peer_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    char *event = msg? zmsg_popstr (msg): NULL;
    if (event && streq (event, "CONNECTED")) {
        self->connected = true;
        herd_ratelimit_log (self->log, self->name, LOG_INFO,
                            "bus: connected to %s", self->name);
    }
    else
    if (event && streq (event, "DISCONNECTED")) {
        self->connected = false;
        //  What it publishes until we are back is lost to us
        s_updates_lost (self);
        herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                            "bus: disconnected from %s; will catch up when it is back", self->name);
    }
    freen (event);
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Its catch-up (bus/herd_catchup): what the snapshot's answers tell us

static int
s_catchup_line (const char *line, size_t size, void *arg)
{
    herd_peer_t *self = (herd_peer_t *) arg;
    int outcome = self->accept? self->accept (self, line, size, true, self->arg): HERD_STORE_STALE;
    if (outcome == HERD_STORE_INVALID) {
        char sample [200];
        herd_ratelimit_log (self->log, self->name, LOG_WARNING, "sync: dropped a malformed line from %s: %s",
                            self->name, herd_log_sample (line, size, sample, sizeof sample));
    }
    return outcome;
}

//  What a chunk made us accept goes on in one batch of ours
static void
s_catchup_merged (void *arg)
{
    herd_peer_t *self = (herd_peer_t *) arg;
    if (self->done)
        self->done (self->done_arg);
}

static void
s_catchup_done (void *arg)
{
    herd_peer_t *self = (herd_peer_t *) arg;
    self->completed++;
    self->catch_up_failures = 0;
    herd_ratelimit_log (self->log, self->name, LOG_INFO,
                        "sync: caught up with %s: %zu updates, %zu new to us, in %" PRId64 " ms",
                        self->name, herd_catchup_received (self->catchup), herd_catchup_fresh (self->catchup),
                        zclock_mono () - herd_catchup_started (self->catchup));
    if (self->state == HERD_PEER_AGAIN)
        herd_ratelimit_log (self->log, self->name, LOG_INFO,
                            "sync: updates from %s were lost during that catch-up; will ask again",
                            self->name);
    s_move (self, S_DONE);
}

static void
s_catchup_failed (const char *why, void *arg)
{
    s_catch_up_failed ((herd_peer_t *) arg, why);
}

void
herd_peer_attach (herd_peer_t *self, zloop_t *loop, herd_peer_accept_fn *accept, void *arg,
                  herd_peer_done_fn *done, void *done_arg)
{
    assert (self);
    self->accept = accept;
    self->arg = arg;
    self->done = done;
    self->done_arg = done_arg;
    assert (!self->stream_reader);
    self->loop = loop;
    s_link_attach (self);
}

//  Makes the link again from new sockets, from a handler of the running
//  loop. false if it could not: our keys and endpoints did not change, so
//  only a vanished public certificate fails here (said once), and the next
//  beat tries again
static bool
s_link_remake (herd_peer_t *self, int64_t now)
{
    bool was_up = self->sub != NULL;
    s_link_break (self, true);
    char *error = NULL;
    if (s_link_make (self, &error)) {
        if (was_up)
            herd_ratelimit_log (self->log, self->name, LOG_ERR,
                                "bus: cannot make the link to %s again: %s", self->name, error);
        freen (error);
        s_link_break (self, true);
        self->built = now;
        return false;
    }
    s_link_attach (self);
    self->rebuilds++;
    return true;
}

//  A link silent for S_REBUILD_BEATS is made again from new sockets, and
//  again every S_REBUILD_AGAIN_BEATS while it stays silent
static void
s_rebuild_if_silent (herd_peer_t *self, int64_t now)
{
    int64_t last = self->heard > self->built? self->heard: self->built;
    int64_t wait = (int64_t) (self->rebuilds_silent? S_REBUILD_AGAIN_BEATS: S_REBUILD_BEATS) * self->heartbeat;
    if (!self->loop || now - last <= wait)
        return;
    herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                        "bus: nothing from %s for %" PRId64 " ms: making its link again from new sockets",
                        self->name, now - (self->heard? self->heard: self->built));
    if (!s_link_remake (self, now))
        return;
    self->rebuilds_silent++;
    //  What it sent meanwhile is lost to us, and so is a catch-up underway
    s_move (self, S_REMADE_SILENT);
}

//  A link whose stream is heard but whose catch-ups keep failing is made
//  again too, at most once every S_REBUILD_BEATS
static void
s_rebuild_if_unanswered (herd_peer_t *self, int64_t now)
{
    if (!self->loop || self->catch_up_failures < S_CATCH_UP_FAILURES
    ||  now - self->built <= (int64_t) S_REBUILD_BEATS * self->heartbeat)
        return;
    herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                        "sync: %zu catch-ups with %s failed in a row: making its link again from new sockets",
                        self->catch_up_failures, self->name);
    if (!s_link_remake (self, now))
        return;
    self->catch_up_failures = 0;
    s_move (self, S_REMADE_UNANSWERED);
}

void
herd_peer_set_store (herd_peer_t *self, herd_store_t *store)
{
    assert (self);
    self->store = store;
}

void
herd_peer_check (herd_peer_t *self, int64_t now)
{
    assert (self);
    if (!self->sub && self->loop) {
        s_link_remake (self, now);          //  A rebuild that failed: try again
        return;
    }
    s_rebuild_if_silent (self, now);
    s_rebuild_if_unanswered (self, now);
    if (self->heard && !self->silent && now - self->heard > S_SILENCE_BEATS * self->heartbeat) {
        self->silent = true;
        herd_ratelimit_log (self->log, self->name, LOG_WARNING,
                            "bus: nothing from %s for %" PRId64 " ms: link lost, will catch up when it is back",
                            self->name, now - self->heard);
        s_updates_lost (self);
    }
    if (s_syncing (self) && self->catchup
    &&  now - herd_catchup_progress (self->catchup) > S_STALL_MSECS)
        s_catch_up_failed (self, "stalled");
}

const char *
herd_peer_name (herd_peer_t *self)
{
    assert (self);
    return self->name;
}

herd_peer_state_t
herd_peer_state (herd_peer_t *self)
{
    assert (self);
    return self->state;
}

size_t
herd_peer_completed (herd_peer_t *self)
{
    assert (self);
    return self->completed;
}

bool
herd_peer_syncable (herd_peer_t *self)
{
    assert (self);
    return self->sync_endpoint != NULL;
}

json_t *
herd_peer_link (herd_peer_t *self, int64_t now)
{
    assert (self);
    //  The peer says itself whether its link is up and whether it syncs:
    //  nobody reading this works it out again
    //  A neighbour of another bus format is heard but not understood:
    //  not up, in a state of its own
    bool foreign = self->foreign_format != 0;
    return json_pack ("{s:b, s:b, s:b, s:b, s:o, s:I, s:s, s:I, s:b, s:I}",
        "up", self->connected && !self->silent && !foreign,
        "syncing", s_syncing (self),
        "connected", self->connected,
        "silent", self->silent,
        "heard_ms_ago", self->heard? json_integer (now - self->heard): json_null (),
        "sequence", (json_int_t) self->sequence,
        "state", foreign? "incompatible": s_state_names [self->state],
        "remade", (json_int_t) self->rebuilds,
        "incompatible", foreign,
        "format", (json_int_t) (foreign? self->foreign_format: HERD_BUS_FORMAT));
}

json_t *
herd_peer_catch_up (herd_peer_t *self)
{
    assert (self);
    return json_pack ("{s:b, s:I}",
        "syncing", s_syncing (self),
        "completed", (json_int_t) self->completed);
}

//  --------------------------------------------------------------------------
//  Selftest: B's peer for A, against A's bus socket and snapshot over inproc,
//  walked through the state machine

static herd_store_t *s_store = NULL;       //  B's store
static size_t s_from_stream = 0;
static size_t s_from_snapshot = 0;

static int
s_test_accept (herd_peer_t *peer, const char *line, size_t size, bool caught_up, void *arg)
{
    (void) peer;
    (void) arg;
    if (caught_up)
        s_from_snapshot++;
    else
        s_from_stream++;
    return herd_store_offer_text (s_store, line, size);
}

//  One turn of the peer's loop, and of the snapshot's if it may answer
static void
s_turn (zloop_t *peer_loop, zloop_t *snapshot_loop)
{
    herd_loop_run_for (peer_loop, 5);
    if (snapshot_loop)
        herd_loop_run_for (snapshot_loop, 5);
}

//  Publishes a batch numbered sequence of the AT lines given, as A would
static void
s_send_batch (zsock_t *pub, uint64_t sequence, const char *line, ...)
{
    herd_bus_batch_t *batch = herd_bus_batch_new ("A");
    va_list args;
    va_start (args, line);
    for (; line; line = va_arg (args, const char *))
        assert (herd_bus_batch_add (batch, line, strlen (line)));
    va_end (args);
    herd_bus_batch_send (batch, zsock_resolve (pub), sequence);
    herd_bus_batch_destroy (&batch);
}

static void
s_send_heartbeat (zsock_t *pub, uint64_t sequence)
{
    herd_bus_msg_send_heartbeat (zsock_resolve (pub), "A", sequence);
}

//  Turns until the peer is in state, or two seconds pass
static void
s_run_until (herd_peer_t *peer, herd_peer_state_t state, zloop_t *peer_loop, zloop_t *snapshot_loop)
{
    for (int round = 0; round < 200 && herd_peer_state (peer) != state; round++)
        s_turn (peer_loop, snapshot_loop);
}

void
herd_peer_test (bool verbose)
{
    printf (" * herd_peer: ");
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
        "        bus = inproc://herd-peer-test-bus\n"
        "        sync = inproc://herd-peer-test-sync\n"
        "        neighbours = B\n"
        "    B\n"
        "        client = 127.0.0.1:2\n"
        "        bus = inproc://herd-peer-test-bus-b\n"
        "        neighbours = A\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "peer-test", &error);
    assert (config);
    //  A: a PUB we drive by hand, and a snapshot of 700 clients
    zsock_t *pub = zsock_new_pub ("inproc://herd-peer-test-bus");
    herd_store_t *a_store = herd_store_new (10000);
    for (int client = 0; client < 700; client++) {
        char line [80];
        snprintf (line, sizeof line, "AT A +0.1 client%d +1+1 %d", client, 100 + client);
        herd_store_offer_text (a_store, line, strlen (line));
    }
    herd_keys_t *keys = herd_keys_new (config, "B", &error);
    assert (keys && !herd_keys_secure (keys));
    herd_snapshot_t *snapshot = herd_snapshot_new (config, "A", a_store, keys, &error);
    assert (snapshot);
    //  B's peer for A
    s_store = herd_store_new (10000);
    const char *better = "AT B +0.1 client7 +2+2 9999";     //  B knows better here
    herd_store_offer_text (s_store, better, strlen (better));
    herd_peer_t *peer = herd_peer_new (config, "A", keys, &error);
    assert (peer);
    assert (streq (herd_peer_name (peer), "A") && herd_peer_syncable (peer));
    assert (herd_peer_state (peer) == HERD_PEER_LOST);
    //  Two loops, so the test decides when A's snapshot may answer
    zloop_t *loop = zloop_new ();
    zloop_t *a_loop = zloop_new ();
    herd_snapshot_attach (snapshot, a_loop);
    herd_peer_attach (peer, loop, s_test_accept, NULL, NULL, NULL);

    //  LOST, message heard -> SYNCING (slow joiner: keep beating until the
    //  subscription carries one)
    for (int round = 0; round < 400 && herd_peer_state (peer) == HERD_PEER_LOST; round++) {
        s_send_heartbeat (pub, 0);
        s_turn (loop, NULL);
    }
    assert (herd_peer_state (peer) == HERD_PEER_SYNCING);
    //  SYNCING, DONE -> LIVE
    s_run_until (peer, HERD_PEER_LIVE, loop, a_loop);
    assert (herd_peer_state (peer) == HERD_PEER_LIVE);
    assert (herd_peer_completed (peer) == 1);
    assert (s_from_snapshot == 700 && herd_store_size (s_store) == 700);
    herd_at_t at;
    herd_store_lookup (s_store, "client7", &at);
    assert (at.server.size == 1 && at.server.start [0] == 'B');

    //  Updates in order keep it LIVE
    s_send_batch (pub, 1, "AT A +0.1 new1 +1+1 5", NULL);
    s_send_batch (pub, 2, "AT A +0.1 new2 +1+1 5", "AT A +0.1 new3 +1+1 5", NULL);
    s_send_heartbeat (pub, 2);
    for (int round = 0; round < 100 && s_from_stream < 3; round++)
        s_turn (loop, a_loop);
    assert (s_from_stream == 3);
    assert (herd_peer_state (peer) == HERD_PEER_LIVE && herd_peer_completed (peer) == 1);
    //  A stale echo (what B holds, coming back) changes nothing
    size_t stored = herd_store_size (s_store);
    s_send_batch (pub, 3, better, "AT A +0.1 new1 +1+1 5", NULL);
    for (int round = 0; round < 100 && s_from_stream < 5; round++)
        s_turn (loop, a_loop);
    assert (s_from_stream == 5 && herd_store_size (s_store) == stored);
    herd_store_lookup (s_store, "client7", &at);
    assert (at.server.start [0] == 'B');
    assert (herd_peer_state (peer) == HERD_PEER_LIVE);
    //  A malformed batch is dropped whole; the numbering is unharmed
    zstr_send (pub, "BATCH A 4 2\nAT A +0.1 bad +1+1 5\n");
    s_send_heartbeat (pub, 3);
    s_turn (loop, a_loop);
    s_turn (loop, a_loop);
    assert (!herd_store_lookup (s_store, "bad", NULL));
    assert (herd_peer_state (peer) == HERD_PEER_LIVE);

    //  LIVE, gap -> LOST, and the same message heard asks: SYNCING
    //  (a batch cut by a gap: its own updates still count)
    const char *missed = "AT A +0.1 missed +1+1 5";
    herd_store_offer_text (a_store, missed, strlen (missed));
    s_send_batch (pub, 5, "AT A +0.1 new5 +1+1 5", "AT A +0.1 new6 +1+1 5", NULL);
    s_run_until (peer, HERD_PEER_SYNCING, loop, NULL);
    assert (herd_peer_state (peer) == HERD_PEER_SYNCING);
    assert (herd_store_lookup (s_store, "new5", NULL) && herd_store_lookup (s_store, "new6", NULL));
    assert (!herd_store_lookup (s_store, "missed", NULL));
    //  SYNCING, gap -> AGAIN
    s_send_heartbeat (pub, 9);
    s_run_until (peer, HERD_PEER_AGAIN, loop, NULL);
    assert (herd_peer_state (peer) == HERD_PEER_AGAIN);
    //  AGAIN, DONE -> LOST: the snapshot counts, the next message asks again
    s_run_until (peer, HERD_PEER_LOST, loop, a_loop);
    assert (herd_peer_state (peer) == HERD_PEER_LOST);
    assert (herd_peer_completed (peer) == 2);
    assert (herd_store_lookup (s_store, "missed", NULL));
    s_send_heartbeat (pub, 9);
    s_run_until (peer, HERD_PEER_LIVE, loop, a_loop);
    assert (herd_peer_state (peer) == HERD_PEER_LIVE);
    assert (herd_peer_completed (peer) == 3);

    //  LIVE, silence past three heartbeats -> LOST, and the link says so
    int64_t later = zclock_mono () + 4 * 50;
    herd_peer_check (peer, later);
    assert (herd_peer_state (peer) == HERD_PEER_LOST);
    json_t *link = herd_peer_link (peer, later);
    assert (json_is_true (json_object_get (link, "silent")));
    assert (json_is_false (json_object_get (link, "up")) && json_is_false (json_object_get (link, "syncing")));
    assert (streq (json_string_value (json_object_get (link, "state")), "lost"));
    assert (json_integer_value (json_object_get (link, "remade")) == 0);
    json_decref (link);
    //  Silent past S_REBUILD_BEATS: the link is made again, new sockets,
    //  and it is heard on them (slow joiner: beat until it is)
    later = zclock_mono () + (S_REBUILD_BEATS + 1) * 50;
    herd_peer_check (peer, later);
    link = herd_peer_link (peer, later);
    assert (json_integer_value (json_object_get (link, "remade")) == 1);
    json_decref (link);

    //  SYNCING with no progress for S_STALL_MSECS -> LOST
    for (int round = 0; round < 400 && herd_peer_state (peer) != HERD_PEER_SYNCING; round++) {
        s_send_heartbeat (pub, 9);
        s_turn (loop, NULL);
    }
    assert (herd_peer_state (peer) == HERD_PEER_SYNCING);
    json_t *catch_up = herd_peer_catch_up (peer);
    assert (json_is_true (json_object_get (catch_up, "syncing")));
    json_decref (catch_up);
    link = herd_peer_link (peer, zclock_mono ());
    assert (json_is_true (json_object_get (link, "syncing")));      //  (inproc: no "connected" event)
    json_decref (link);
    //  (heard "then" too: a check in the future would also find the link
    //  silent and make it anew, and the late answers below would go to a
    //  socket that is gone)
    int64_t stalled = zclock_mono () + S_STALL_MSECS + 1;
    peer->heard = stalled;
    herd_peer_check (peer, stalled);
    assert (herd_peer_state (peer) == HERD_PEER_LOST);
    assert (herd_peer_completed (peer) == 3);
    link = herd_peer_link (peer, zclock_mono ());
    assert (json_integer_value (json_object_get (link, "remade")) == 1);     //  The same sockets
    json_decref (link);
    //  Its late answers, on the same socket, are stale now: ignored
    size_t merged = s_from_snapshot;
    for (int round = 0; round < 40; round++)
        s_turn (loop, a_loop);
    assert (herd_peer_completed (peer) == 3 && s_from_snapshot == merged);

    //  The moves walked above; the table has one row per (state, event)
    size_t walked = 0;
    for (size_t row = 0; row < S_MOVES; row++) {
        walked += s_moves_taken [row] > 0;
        for (size_t other = row + 1; other < S_MOVES; other++)
            assert (s_moves [row].state != s_moves [other].state || s_moves [row].event != s_moves [other].event);
    }
    assert (walked >= 7);
    //  Readers leave their loops before the loops go
    herd_peer_destroy (&peer);
    herd_reader_collect ();
    assert (peer == NULL);
    herd_snapshot_destroy (&snapshot);
    herd_keys_destroy (&keys);
    zloop_destroy (&a_loop);
    zloop_destroy (&loop);
    zsock_destroy (&pub);
    herd_store_destroy (&a_store);
    herd_store_destroy (&s_store);
    herd_config_destroy (&config);
    printf ("OK\n");
}
