//  bus/herd_feed.h: a server's update feed for monitoring tools
//  (docs/PROTOCOL.md section 3): an XPUB on which every update the server
//  accepts is one message [client id][AT line], so a prefix subscription
//  gets one client. The XPUB hands up each subscription and the last
//  cancellation of each, so the feed knows whether anyone listens, and
//  does no work while nobody does. Monitors read it with their own key;
//  it takes nothing from them but subscriptions, and no more than
//  max_subscriptions distinct prefixes of those (bus/herd_xpub.h).

#ifndef HERD_FEED_H_INCLUDED
#define HERD_FEED_H_INCLUDED

typedef struct _herd_feed_t herd_feed_t;

//  Binds the feed at endpoint, a CURVE server with keys (borrowed, must
//  outlive the feed) in the zauth domain "feed", bounded by config's
//  bus/feed_* settings: monitors, the bytes their queues hold together,
//  how long one may take nothing (the slowest go first; bus/herd_xpub,
//  bus/herd_subscribers). NULL and *error_p on failure.
herd_feed_t *
    herd_feed_new (const char *endpoint, herd_config_t *config, herd_keys_t *keys, char **error_p);

void
    herd_feed_destroy (herd_feed_t **self_p);

//  Reads the subscriptions inside loop
void
    herd_feed_attach (herd_feed_t *self, zloop_t *loop);

//  Sends an accepted update to whoever subscribed; nothing when nobody
//  did. Never blocks: past the HWM a slow monitor loses updates.
void
    herd_feed_publish (herd_feed_t *self, const herd_at_t *at);

//  Subscriptions held now (distinct prefixes: 0 when nobody listens)
size_t
    herd_feed_subscriptions (herd_feed_t *self);

//  Updates sent since start
uint64_t
    herd_feed_sent (herd_feed_t *self);

//  Puts its counters into stats (core/herd_counters' feed/...):
//  subscriptions, updates sent and refused (the socket would not take
//  them), rebuilds (subscriptions outgrew their bound), monitors
//  connected and dropped. self NULL: a server with no feed, all zero.
void
    herd_feed_stats (herd_feed_t *self, json_t *stats);

//  A monitor's side: a SUB connected to the feed at endpoint, for client
//  ids that start with prefix ("" for all), queueing as many updates as a
//  feed does. With keys and server, a CURVE client that expects server's
//  key. NULL and *error_p if that key is missing or endpoint is not one.
zsock_t *
    herd_feed_subscriber_new (const char *endpoint, const char *prefix, herd_keys_t *keys,
                              const char *server, char **error_p);

void
    herd_feed_test (bool verbose);

#endif
