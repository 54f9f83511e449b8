//  bus/herd_xpub.c: a bound XPUB that holds a bounded number of subscriptions.

#include "bus/herd_bus_layer.h"

struct _herd_xpub_t {
    zsock_t *sock;              //  NULL while paused before binding again
    herd_reader_t *reader;      //  Its subscriptions, once attached
    zloop_t *loop;              //  Once attached (borrowed)
    int check_timer;
    int rebuild_timer;          //  Drops every subscriber, or binds again; -1
    herd_keys_t *keys;          //  Borrowed
    char *endpoint;
    char *name;                 //  ZAP domain and log prefix: bus, feed
    char *subscribers;          //  Who subscribes, for the log
    char *setting;              //  Where the bound came from, for the log
    int hwm;
    size_t max_subscriptions;
    size_t subscriptions;       //  Distinct prefixes subscribed now
    uint64_t rebinds;           //  Times they outgrew the bound
    int64_t rebind_at;          //  zclock_mono of the last time
    int pause;                  //  Before binding again, msecs
    herd_ratelimit_t *log;      //  What subscribers make us log, limited (owned)
    herd_subscribers_t *connections;    //  Their connections, bounded, or NULL (owned)
    int tick_timer;             //  Ticks connections, or -1
};

//  The pause doubles while subscriptions keep outgrowing the bound
#define S_PAUSE_FIRST     100
#define S_PAUSE_LONGEST   10000

//  Subscriptions queued for us in each subscriber's pipe
#define S_QUEUED_MAX      4

static int s_handle_subscriptions (zloop_t *loop, zsock_t *reader, void *arg);

//  Reads the socket's subscriptions in the loop, and counts its refused
//  handshakes
static void
s_enter_loop (herd_xpub_t *self)
{
    self->reader = herd_reader_new (self->loop, self->sock, s_handle_subscriptions, self);
    herd_keys_watch (self->keys, self->loop, self->sock, self->name,
                     self->connections? herd_subscribers_connection: NULL, self->connections);
}

static int
s_bind (herd_xpub_t *self, char **error_p)
{
    self->sock = zsock_new (ZMQ_XPUB);
    assert (self->sock);
    zsock_set_sndhwm (self->sock, self->hwm);
    zsock_set_linger (self->sock, 0);
    zsock_set_rcvtimeo (self->sock, HERD_LOOP_RCVTIMEO);
    //  It reads only subscriptions: a subscriber's big frames are refused,
    //  and only a few wait for us at a time. libzmq moves into its trie
    //  every subscription that waits whenever we touch the socket, and
    //  its I/O thread refills the queue meanwhile: with a long queue, a
    //  flood is taken in faster than we can count it.
    zsock_set_maxmsgsize (self->sock, HERD_REQUEST_MAXMSGSIZE);
    zsock_set_rcvhwm (self->sock, S_QUEUED_MAX);
    herd_keys_apply_server (self->keys, self->sock, self->name);
    if (zsock_bind (self->sock, "%s", self->endpoint) == -1) {
        *error_p = zsys_sprintf ("cannot bind the %s to %s: %s", self->name,
                                 self->endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->sock);
        return -1;
    }
    if (self->loop)
        s_enter_loop (self);
    return 0;
}

herd_xpub_t *
herd_xpub_new (const char *endpoint, const char *name, const char *subscribers, int hwm,
               size_t max_subscriptions, const char *setting, herd_keys_t *keys, char **error_p)
{
    assert (endpoint && name && subscribers && max_subscriptions && setting && keys && error_p);
    herd_xpub_t *self = (herd_xpub_t *) zmalloc (sizeof (herd_xpub_t));
    self->keys = keys;
    self->endpoint = strdup (endpoint);
    self->name = strdup (name);
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, 1);
    self->subscribers = strdup (subscribers);
    self->setting = strdup (setting);
    self->hwm = hwm;
    self->max_subscriptions = max_subscriptions;
    self->check_timer = self->rebuild_timer = self->tick_timer = -1;
    self->pause = S_PAUSE_FIRST;
    if (s_bind (self, error_p)) {
        herd_xpub_destroy (&self);
        return NULL;
    }
    return self;
}

void
herd_xpub_destroy (herd_xpub_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_xpub_t *self = *self_p;
        herd_reader_destroy (&self->reader);
        if (self->check_timer != -1)
            zloop_timer_end (self->loop, self->check_timer);
        if (self->rebuild_timer != -1)
            zloop_timer_end (self->loop, self->rebuild_timer);
        if (self->tick_timer != -1)
            zloop_timer_end (self->loop, self->tick_timer);
        zsock_destroy (&self->sock);
        herd_subscribers_destroy (&self->connections);
        freen (self->endpoint);
        freen (self->name);
        herd_ratelimit_destroy (&self->log);
        freen (self->subscribers);
        freen (self->setting);
        freen (self);
        *self_p = NULL;
    }
}

static int
s_bind_again (zloop_t *loop, int timer_id, void *arg)
{
    (void) timer_id;
    herd_xpub_t *self = (herd_xpub_t *) arg;
    self->rebuild_timer = -1;
    char *error = NULL;
    if (s_bind (self, &error)) {
        //  The old listener closes in libzmq's I/O thread: soon
        zsys_warning ("%s: %s; trying again", self->name, error);
        freen (error);
        self->rebuild_timer = zloop_timer (loop, S_PAUSE_FIRST, 1, s_bind_again, self);
    }
    else
        zsys_info ("%s: bound again on %s; %ss reconnect and subscribe again by themselves",
                   self->name, self->endpoint, self->subscribers);
    return 0;
}

//  From a timer, not the reader's own handler, which still looks at the
//  socket when it returns
static int
s_drop_everyone (zloop_t *loop, int timer_id, void *arg)
{
    (void) timer_id;
    herd_xpub_t *self = (herd_xpub_t *) arg;
    herd_reader_retire (&self->reader);
    herd_keys_unwatch (self->keys, self->sock);
    zsock_destroy (&self->sock);
    if (self->connections)
        herd_subscribers_clear (self->connections);
    self->subscriptions = 0;
    self->rebuild_timer = zloop_timer (loop, self->pause, 1, s_bind_again, self);
    return 0;
}

static void
s_outgrown (herd_xpub_t *self, zmq_msg_t *message)
{
    int64_t now = zclock_mono ();
    self->pause = self->rebinds && now - self->rebind_at < 2 * S_PAUSE_LONGEST?
                  MIN (self->pause * 2, S_PAUSE_LONGEST): S_PAUSE_FIRST;
    self->rebinds++;
    self->rebind_at = now;
    //  With security on, zauth hands up the subscriber's key and its
    //  certificate's name
    const char *key = zmq_msg_gets (message, "User-Id");
    const char *name = zmq_msg_gets (message, "name");
    zsys_warning ("%s: more than %zu prefixes subscribed (%s), the last by %s%s%s%s: dropping every %s, "
                  "binding again in %d ms", self->name, self->max_subscriptions, self->setting,
                  key && *key? "key ": "a subscriber (security off)", name? name: "", name? " ": "",
                  key && *key? key: "", self->subscribers, self->pause);
    self->rebuild_timer = zloop_timer (self->loop, 1, 1, s_drop_everyone, self);
}

//  [1 + prefix] subscribes, [0 + prefix] cancels; the XPUB hands up the
//  first subscription to a prefix and its last cancellation only
static int
s_handle_subscriptions (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_xpub_t *self = (herd_xpub_t *) arg;
    if (self->rebuild_timer != -1)
        return 0;                       //  Dropping them all
    void *handle = zsock_resolve (reader);
    zmq_msg_t message;
    zmq_msg_init (&message);
    while (zmq_msg_recv (&message, handle, ZMQ_DONTWAIT) > 0) {
        byte kind = *(byte *) zmq_msg_data (&message);
        size_t before = self->subscriptions;
        if (kind == 1)
            self->subscriptions++;
        else
        if (kind == 0 && self->subscriptions)
            self->subscriptions--;
        if (self->subscriptions > self->max_subscriptions) {
            s_outgrown (self, &message);
            break;
        }
        //  Monitors may come and go at any rate: limited
        if (before == 0 && self->subscriptions)
            herd_ratelimit_log (self->log, self->name, LOG_INFO, "%s: a %s subscribed; sending",
                                self->name, self->subscribers);
        else
        if (before && self->subscriptions == 0)
            herd_ratelimit_log (self->log, self->name, LOG_INFO, "%s: nobody subscribed any more", self->name);
    }
    zmq_msg_close (&message);
    return 0;
}

//  A send may take the signal of a subscription that came meanwhile (see
//  core/herd_reader.h): look a few times a second rather than after each
//  of thousands of sends
static int
s_check_subscriptions (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_xpub_t *self = (herd_xpub_t *) arg;
    if (self->reader)
        herd_reader_check (self->reader);
    return 0;
}

static int
s_tick_connections (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_xpub_t *self = (herd_xpub_t *) arg;
    herd_subscribers_tick (self->connections);
    return 0;
}

void
herd_xpub_bound_subscribers (herd_xpub_t *self, size_t max, int64_t max_stall)
{
    assert (self && !self->loop && !self->connections && self->sock);
    char *endpoint = zsock_last_endpoint (self->sock);
    const char *colon = endpoint? strrchr (endpoint, ':'): NULL;
    //  Only TCP connections have a kernel state to read
    if (endpoint && strncmp (endpoint, "tcp://", 6) == 0 && colon)
        self->connections = herd_subscribers_new (self->name, self->subscribers, atoi (colon + 1),
                                                  max, max_stall);
    freen (endpoint);
}

herd_subscribers_t *
herd_xpub_subscribers (herd_xpub_t *self)
{
    assert (self);
    return self->connections;
}

void
herd_xpub_attach (herd_xpub_t *self, zloop_t *loop)
{
    assert (self && loop && !self->loop && self->sock);
    self->loop = loop;
    s_enter_loop (self);
    self->check_timer = zloop_timer (loop, 200, 0, s_check_subscriptions, self);
    if (self->connections)
        self->tick_timer = zloop_timer (loop, 1000, 0, s_tick_connections, self);
}

void *
herd_xpub_handle (herd_xpub_t *self)
{
    assert (self);
    return self->sock? zsock_resolve (self->sock): NULL;
}

size_t
herd_xpub_subscriptions (herd_xpub_t *self)
{
    assert (self);
    return self->subscriptions;
}

uint64_t
herd_xpub_rebinds (herd_xpub_t *self)
{
    assert (self);
    return self->rebinds;
}

//  --------------------------------------------------------------------------
//  Selftest: a subscriber past the bound is dropped, and comes back

void
herd_xpub_test (bool verbose)
{
    printf (" * herd_xpub: ");
    if (verbose)
        printf ("\n");
    const char *text = "herd\n    security = off\n"
                       "servers\n    A\n        client = 127.0.0.1:1\n        bus = inproc://x\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "xpub-test", &error);
    assert (config);
    herd_keys_t *keys = herd_keys_new (config, "A", &error);
    assert (keys);
    herd_xpub_t *xpub = herd_xpub_new ("inproc://herd-xpub-test", "test", "subscriber", 1000, 3,
                                       "test/max", keys, &error);
    assert (xpub);
    herd_xpub_t *again = herd_xpub_new ("inproc://herd-xpub-test", "test", "subscriber", 1000, 3,
                                        "test/max", keys, &error);
    assert (!again && strstr (error, "cannot bind the test to inproc://herd-xpub-test"));
    freen (error);
    zloop_t *loop = zloop_new ();
    herd_xpub_attach (xpub, loop);
    //  Three prefixes, the bound, are held
    zsock_t *subscriber = zsock_new_sub (">inproc://herd-xpub-test", "a");
    zsock_set_subscribe (subscriber, "b");
    zsock_set_subscribe (subscriber, "c");
    zsock_set_subscribe (subscriber, "c");      //  Not distinct: not counted
    for (int round = 0; round < 100 && herd_xpub_subscriptions (xpub) < 3; round++)
        herd_loop_run_for (loop, 10);
    assert (herd_xpub_subscriptions (xpub) == 3 && herd_xpub_rebinds (xpub) == 0);
    //  A fourth drops everyone; a pause, and the socket is bound again
    zsock_set_subscribe (subscriber, "d");
    for (int round = 0; round < 100 && herd_xpub_handle (xpub); round++)
        herd_loop_run_for (loop, 10);
    assert (herd_xpub_rebinds (xpub) == 1 && !herd_xpub_handle (xpub));
    assert (herd_xpub_subscriptions (xpub) == 0);
    for (int round = 0; round < 100 && !herd_xpub_handle (xpub); round++)
        herd_loop_run_for (loop, 10);
    assert (herd_xpub_handle (xpub));
    //  A new subscriber (inproc connecters do not come back by themselves)
    zsock_destroy (&subscriber);
    subscriber = zsock_new_sub (">inproc://herd-xpub-test", "kiwi");
    assert (subscriber);
    for (int round = 0; round < 100 && !herd_xpub_subscriptions (xpub); round++)
        herd_loop_run_for (loop, 10);
    assert (herd_xpub_subscriptions (xpub) == 1);
    assert (zmq_send (herd_xpub_handle (xpub), "kiwi 1", 6, ZMQ_DONTWAIT) == 6);
    zsock_set_rcvtimeo (subscriber, 1000);
    char *message = zstr_recv (subscriber);
    assert (message && streq (message, "kiwi 1"));
    freen (message);
    //  It leaves: nobody listens
    zsock_destroy (&subscriber);
    for (int round = 0; round < 100 && herd_xpub_subscriptions (xpub); round++)
        herd_loop_run_for (loop, 10);
    assert (herd_xpub_subscriptions (xpub) == 0);
    herd_xpub_destroy (&xpub);
    assert (xpub == NULL);
    herd_reader_collect ();
    herd_keys_destroy (&keys);
    zloop_destroy (&loop);
    herd_config_destroy (&config);
    printf ("OK\n");
}
