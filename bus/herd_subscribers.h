//  bus/herd_subscribers.h: the connections of an XPUB's subscribers (the
//  monitors on a server's feed), so that together they hold a bounded
//  amount of the server's memory. libzmq queues up to the HWM for each
//  subscriber and never drops one that stops reading; this drops it:
//  once a second each connection's kernel state is read (TCP_INFO: bytes
//  the subscriber has acknowledged; SIOCOUTQ: bytes it has not), and one
//  that took nothing for max_stall while bytes waited for it is dropped,
//  its queue freed with it. Past max_subscribers the slowest is dropped
//  to make room (the one stalled longest, else the one furthest behind;
//  while every one keeps up, the newcomer). Dropping is shutdown(2) on
//  libzmq's socket, checked first to be the same connection; libzmq sees
//  it fail and frees its queue. Freed memory goes back to the system
//  (malloc_trim) on the next tick.

#ifndef HERD_SUBSCRIBERS_H_INCLUDED
#define HERD_SUBSCRIBERS_H_INCLUDED

typedef struct _herd_subscribers_t herd_subscribers_t;

//  For the XPUB bound on port; name ("feed") and subscribers ("monitor")
//  for the log
herd_subscribers_t *
    herd_subscribers_new (const char *name, const char *subscribers, int port, size_t max_subscribers,
                          int64_t max_stall);

void
    herd_subscribers_destroy (herd_subscribers_t **self_p);

//  What the socket's monitor tells (herd_keys_connection_fn, arg self)
void
    herd_subscribers_connection (int fd, bool accepted, void *arg);

//  The socket went (bound anew): forgets every connection
void
    herd_subscribers_clear (herd_subscribers_t *self);

//  Once a second: drops the stalled, gives freed memory back
void
    herd_subscribers_tick (herd_subscribers_t *self);

//  Connected now
size_t
    herd_subscribers_count (herd_subscribers_t *self);

//  Dropped since start: for stalling, and to make room
uint64_t
    herd_subscribers_dropped_stalled (herd_subscribers_t *self);
uint64_t
    herd_subscribers_dropped_room (herd_subscribers_t *self);

void
    herd_subscribers_test (bool verbose);

#endif
