//  bus/herd_feed.c: the update feed for monitoring tools.

#include "bus/herd_bus_layer.h"

struct _herd_feed_t {
    herd_xpub_t *xpub;          //  Bound; monitors subscribe
    uint64_t sent;              //  Updates sent
    uint64_t refused;           //  Updates the socket would not take
};

herd_feed_t *
herd_feed_new (const char *endpoint, herd_config_t *config, herd_keys_t *keys, char **error_p)
{
    assert (endpoint && config && keys && error_p);
    herd_feed_t *self = (herd_feed_t *) zmalloc (sizeof (herd_feed_t));
    //  The bytes bound shared by every monitor makes each one's queue
    long monitors = herd_config_number (config, "bus/feed_max_monitors");
    long hwm = herd_config_number (config, "bus/feed_max_bytes") / monitors / HERD_FEED_UPDATE_BYTES;
    hwm = MAX (1, MIN (hwm, herd_config_number (config, "bus/feed_hwm")));
    self->xpub = herd_xpub_new (endpoint, "feed", "monitor", (int) hwm,
                                (size_t) herd_config_number (config, "bus/feed_max_subscriptions"),
                                "bus/feed_max_subscriptions", keys, error_p);
    if (!self->xpub) {
        herd_feed_destroy (&self);
        return NULL;
    }
    herd_xpub_bound_subscribers (self->xpub, (size_t) monitors,
                                 herd_config_number (config, "bus/feed_max_stall") * 1000);
    zsys_info ("feed: publishing every accepted update on %s, to %ld monitors at most, each with a "
               "queue of %ld updates (bus/feed_max_bytes, bus/feed_max_monitors, bus/feed_hwm)",
               endpoint, monitors, hwm);
    return self;
}

void
herd_feed_destroy (herd_feed_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_feed_t *self = *self_p;
        herd_xpub_destroy (&self->xpub);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_feed_attach (herd_feed_t *self, zloop_t *loop)
{
    assert (self);
    herd_xpub_attach (self->xpub, loop);
}

void
herd_feed_publish (herd_feed_t *self, const herd_at_t *at)
{
    assert (self && at);
    void *handle = herd_xpub_handle (self->xpub);
    if (!handle || !herd_xpub_subscriptions (self->xpub))
        return;
    if (herd_bus_msg_send_feed (handle, at) == 0)
        self->sent++;
    else
        self->refused++;
}

size_t
herd_feed_subscriptions (herd_feed_t *self)
{
    assert (self);
    return herd_xpub_subscriptions (self->xpub);
}

uint64_t
herd_feed_sent (herd_feed_t *self)
{
    assert (self);
    return self->sent;
}

void
herd_feed_stats (herd_feed_t *self, json_t *stats)
{
    assert (stats);
    herd_xpub_t *xpub = self? self->xpub: NULL;
    herd_subscribers_t *monitors = xpub? herd_xpub_subscribers (xpub): NULL;
    herd_counters_put (stats, HERD_COUNTER_FEED_SUBSCRIPTIONS, xpub? herd_xpub_subscriptions (xpub): 0);
    herd_counters_put (stats, HERD_COUNTER_FEED_SENT, self? self->sent: 0);
    herd_counters_put (stats, HERD_COUNTER_FEED_REFUSED, self? self->refused: 0);
    herd_counters_put (stats, HERD_COUNTER_FEED_REBINDS, xpub? herd_xpub_rebinds (xpub): 0);
    herd_counters_put (stats, HERD_COUNTER_FEED_MONITORS, monitors? herd_subscribers_count (monitors): 0);
    herd_counters_put_keyed (stats, HERD_COUNTER_FEED_MONITORS_DROPPED, "stalled",
                             monitors? herd_subscribers_dropped_stalled (monitors): 0);
    herd_counters_put_keyed (stats, HERD_COUNTER_FEED_MONITORS_DROPPED, "room",
                             monitors? herd_subscribers_dropped_room (monitors): 0);
}

zsock_t *
herd_feed_subscriber_new (const char *endpoint, const char *prefix, herd_keys_t *keys,
                          const char *server, char **error_p)
{
    assert (endpoint && prefix && error_p);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert (sub);
    zsock_set_subscribe (sub, prefix);
    zsock_set_rcvhwm (sub, HERD_FEED_HWM_DEFAULT);
    zsock_set_maxmsgsize (sub, HERD_BUS_MAXMSGSIZE);
    if (keys && server && herd_keys_apply_client (keys, sub, server, error_p))
        zsock_destroy (&sub);
    else
    if (zsock_connect (sub, "%s", endpoint) == -1) {
        *error_p = zsys_sprintf ("cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sub);
    }
    return sub;
}

//  --------------------------------------------------------------------------
//  Selftest: a feed over inproc, a monitor that filters by prefix

void
herd_feed_test (bool verbose)
{
    printf (" * herd_feed: ");
    if (verbose)
        printf ("\n");
    const char *text = "herd\n    security = off\n"
                       "servers\n    A\n        client = 127.0.0.1:1\n        bus = inproc://x\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "feed-test", &error);
    assert (config);
    herd_keys_t *keys = herd_keys_new (config, "A", &error);
    assert (keys);
    herd_feed_t *feed = herd_feed_new ("inproc://herd-feed-test", config, keys, &error);
    assert (feed);
    herd_feed_t *again = herd_feed_new ("inproc://herd-feed-test", config, keys, &error);
    assert (!again && strstr (error, "cannot bind the feed to inproc://herd-feed-test"));
    freen (error);
    zloop_t *loop = zloop_new ();
    herd_feed_attach (feed, loop);
    herd_at_t kiwi, pear;
    const char *kiwi_line = "AT A +0.1 kiwi +1+1 5", *pear_line = "AT A +0.1 pear +1+1 5";
    assert (herd_protocol_parse_at (kiwi_line, strlen (kiwi_line), &kiwi) == 0);
    assert (herd_protocol_parse_at (pear_line, strlen (pear_line), &pear) == 0);
    //  Nobody listens: nothing is sent
    herd_feed_publish (feed, &kiwi);
    assert (herd_feed_sent (feed) == 0 && herd_feed_subscriptions (feed) == 0);
    //  A monitor for kiwi only
    zsock_t *monitor = herd_feed_subscriber_new ("inproc://herd-feed-test", "kiwi", keys, "A", &error);
    assert (monitor);
    zsock_t *nowhere = herd_feed_subscriber_new ("nowhere", "", keys, "A", &error);
    assert (!nowhere && strstr (error, "cannot connect to nowhere"));
    freen (error);
    for (int round = 0; round < 100 && !herd_feed_subscriptions (feed); round++)
        herd_loop_run_for (loop, 10);
    assert (herd_feed_subscriptions (feed) == 1);
    herd_feed_publish (feed, &pear);
    herd_feed_publish (feed, &kiwi);
    assert (herd_feed_sent (feed) == 2);
    zsock_set_rcvtimeo (monitor, 1000);
    zmsg_t *msg = zmsg_recv (monitor);
    assert (msg && zmsg_size (msg) == 2);
    herd_bus_frame_t frames [2];
    zframe_t *frame = zmsg_first (msg);
    for (size_t index = 0; index < 2; index++, frame = zmsg_next (msg)) {
        frames [index].data = zframe_data (frame);
        frames [index].size = zframe_size (frame);
    }
    herd_bus_msg_t decoded;
    assert (herd_bus_msg_decode_feed (frames, 2, &decoded) == HERD_BUS_MSG_UPDATE);
    assert (decoded.at.client.size == 4 && !memcmp (decoded.at.client.start, "kiwi", 4));
    zmsg_destroy (&msg);
    zsock_set_rcvtimeo (monitor, 50);
    assert (zmsg_recv (monitor) == NULL);      //  pear never came
    //  The monitor leaves: the feed goes quiet again
    zsock_destroy (&monitor);
    for (int round = 0; round < 100 && herd_feed_subscriptions (feed); round++)
        herd_loop_run_for (loop, 10);
    assert (herd_feed_subscriptions (feed) == 0);
    herd_feed_publish (feed, &kiwi);
    assert (herd_feed_sent (feed) == 2);
    herd_feed_destroy (&feed);
    assert (feed == NULL);
    herd_reader_collect ();
    herd_keys_destroy (&keys);
    zloop_destroy (&loop);
    herd_config_destroy (&config);
    printf ("OK\n");
}
