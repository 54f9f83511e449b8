//  bus/herd_xpub.h: a bound XPUB that holds no more than a given number of
//  subscriptions. libzmq keeps every distinct prefix a subscriber sends in
//  a trie (about 30 bytes a character) until that subscriber leaves, and
//  has no way to refuse one or to drop one subscriber; so this class reads
//  each subscription as it comes, and past the bound drops every
//  subscriber with the socket and binds a new one after a pause (doubling
//  while it happens again, up to 10 s). Subscribers reconnect and
//  subscribe again by themselves; whoever sent too many does it again and
//  is dropped again, and the memory it can take stays bounded.
//
//  The bus and the feed publish on one each.

#ifndef HERD_XPUB_H_INCLUDED
#define HERD_XPUB_H_INCLUDED

typedef struct _herd_xpub_t herd_xpub_t;

//  Binds an XPUB at endpoint, a CURVE server with keys (borrowed, must
//  outlive it) in the zauth domain name (also its name in the log).
//  subscribers names who subscribes, for the log ("monitor"). setting is
//  where max_subscriptions came from, for the log. NULL and *error_p on
//  failure.
herd_xpub_t *
    herd_xpub_new (const char *endpoint, const char *name, const char *subscribers, int hwm,
                   size_t max_subscriptions, const char *setting, herd_keys_t *keys, char **error_p);

void
    herd_xpub_destroy (herd_xpub_t **self_p);

//  Bounds the subscribers' connections (bus/herd_subscribers): at most
//  max of them, each dropped once it takes nothing for max_stall msecs
//  while messages wait for it. Before herd_xpub_attach; a TCP endpoint.
void
    herd_xpub_bound_subscribers (herd_xpub_t *self, size_t max, int64_t max_stall);

//  Its subscribers' connections (borrowed), or NULL without
//  herd_xpub_bound_subscribers
herd_subscribers_t *
    herd_xpub_subscribers (herd_xpub_t *self);

//  Reads the subscriptions inside loop, and counts refused handshakes
void
    herd_xpub_attach (herd_xpub_t *self, zloop_t *loop);

//  The socket to send on: NULL for the pause after the subscribers were
//  dropped (what would be sent then is lost, as for a slow subscriber)
void *
    herd_xpub_handle (herd_xpub_t *self);

//  Distinct prefixes subscribed now (0 when nobody listens)
size_t
    herd_xpub_subscriptions (herd_xpub_t *self);

//  Times the subscriptions outgrew the bound and everyone was dropped
uint64_t
    herd_xpub_rebinds (herd_xpub_t *self);

void
    herd_xpub_test (bool verbose);

#endif
