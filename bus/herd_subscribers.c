//  bus/herd_subscribers.c: an XPUB's subscriber connections, bounded.

#include "bus/herd_bus_layer.h"
#include <malloc.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

//  The kernel's struct tcp_info (linux/tcp.h) as far as tcpi_bytes_acked
//  (Linux 4.1): glibc's copy of it ends before, and linux/tcp.h cannot be
//  included beside netinet/tcp.h
typedef struct {
    struct tcp_info glibc;
    uint64_t pacing_rate;
    uint64_t max_pacing_rate;
    uint64_t bytes_acked;
} s_tcp_info_t;
_Static_assert (sizeof (struct tcp_info) == 104, "glibc's struct tcp_info ends at tcpi_total_retrans");

//  One connection, as the socket's monitor told it
typedef struct {
    int fd;                     //  libzmq's: read, never closed here
    struct sockaddr_storage peer;   //  Who, to tell it from a later one on the same fd
    socklen_t peer_size;
    char peer_text [INET6_ADDRSTRLEN + 8];
    char host [INET6_ADDRSTRLEN];
    int64_t accepted;           //  zclock_mono
    uint64_t acked;             //  Bytes it had acknowledged at the last tick
    int64_t stalled_since;      //  When it last took nothing while bytes waited; 0: it takes
    uint32_t behind;            //  Bytes not acknowledged at the last tick
    bool dropped;               //  Shut down by us; gone at its DISCONNECTED
} s_connection_t;

struct _herd_subscribers_t {
    char *name;                 //  For the log: feed
    char *subscribers;          //  For the log: monitor
    int port;                   //  The XPUB's
    size_t max_subscribers;
    int64_t max_stall;          //  msecs
    zlistx_t *connections;      //  s_connection_t, oldest first (owned)
    size_t count;               //  Not dropped
    bool freed;                 //  Someone went since the last tick
    uint64_t dropped_stalled, dropped_room;
    herd_ratelimit_t *log;      //  Limited per subscriber address (owned)
};

herd_subscribers_t *
herd_subscribers_new (const char *name, const char *subscribers, int port, size_t max_subscribers,
                      int64_t max_stall)
{
    assert (name && subscribers && max_subscribers && max_stall > 0);
    herd_subscribers_t *self = (herd_subscribers_t *) zmalloc (sizeof (herd_subscribers_t));
    self->name = strdup (name);
    self->subscribers = strdup (subscribers);
    self->port = port;
    self->max_subscribers = max_subscribers;
    self->max_stall = max_stall;
    self->connections = zlistx_new ();
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    return self;
}

void
herd_subscribers_destroy (herd_subscribers_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_subscribers_t *self = *self_p;
        for (void *entry = zlistx_first (self->connections); entry; entry = zlistx_next (self->connections))
            free (entry);
        zlistx_destroy (&self->connections);
        herd_ratelimit_destroy (&self->log);
        freen (self->name);
        freen (self->subscribers);
        freen (self);
        *self_p = NULL;
    }
}

static int
s_port_of (const struct sockaddr_storage *address)
{
    if (address->ss_family == AF_INET)
        return ntohs (((const struct sockaddr_in *) address)->sin_port);
    if (address->ss_family == AF_INET6)
        return ntohs (((const struct sockaddr_in6 *) address)->sin6_port);
    return -1;
}

//  True if fd is still the connection entry was made for: our port on
//  our side, the same address and port on theirs (an fd closed and
//  reused for another socket is never shut down by mistake)
static bool
s_same_connection (herd_subscribers_t *self, s_connection_t *entry)
{
    struct sockaddr_storage local, peer;
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    return getsockname (entry->fd, (struct sockaddr *) &local, &local_size) == 0
        && s_port_of (&local) == self->port
        && getpeername (entry->fd, (struct sockaddr *) &peer, &peer_size) == 0
        && peer_size == entry->peer_size && memcmp (&peer, &entry->peer, peer_size) == 0;
}

//  Bytes it has acknowledged, and bytes waiting for it in the kernel
static bool
s_progress (s_connection_t *entry, uint64_t *acked, uint32_t *behind)
{
    s_tcp_info_t info;
    socklen_t size = sizeof info;
    int waiting = 0;
    if (getsockopt (entry->fd, IPPROTO_TCP, TCP_INFO, &info, &size) || size < sizeof info
    ||  ioctl (entry->fd, SIOCOUTQ, &waiting))
        return false;
    *acked = info.bytes_acked;
    *behind = (uint32_t) waiting;
    return true;
}

//  kind ("stalled", "room") keys the log's limit with the address: a
//  flood of one kind of drop never hides the other
static void
s_drop (herd_subscribers_t *self, s_connection_t *entry, const char *kind, const char *why)
{
    if (s_same_connection (self, entry))
        shutdown (entry->fd, SHUT_RDWR);
    entry->dropped = true;
    self->count--;
    char *source = zsys_sprintf ("%s %s", kind, entry->host);
    herd_ratelimit_log (self->log, source, LOG_WARNING, "%s: dropped the %s at %s: %s (%u bytes "
                        "waiting for it in the kernel, more in its queue)", self->name, self->subscribers,
                        entry->peer_text, why, entry->behind);
    freen (source);
}

static s_connection_t *
s_find (herd_subscribers_t *self, int fd)
{
    for (s_connection_t *entry = (s_connection_t *) zlistx_first (self->connections); entry;
         entry = (s_connection_t *) zlistx_next (self->connections))
        if (entry->fd == fd)
            return entry;
    return NULL;
}

//  The slowest: stalled longest, else furthest behind; NULL if every one
//  keeps up
static s_connection_t *
s_slowest (herd_subscribers_t *self)
{
    s_connection_t *slowest = NULL;
    for (s_connection_t *entry = (s_connection_t *) zlistx_first (self->connections); entry;
         entry = (s_connection_t *) zlistx_next (self->connections)) {
        if (entry->dropped)
            continue;
        if (!slowest)
            slowest = entry;
        else
        if (entry->stalled_since && (!slowest->stalled_since || entry->stalled_since < slowest->stalled_since))
            slowest = entry;
        else
        if (!slowest->stalled_since && !entry->stalled_since && entry->behind > slowest->behind)
            slowest = entry;
    }
    return slowest && (slowest->stalled_since || slowest->behind)? slowest: NULL;
}

void
herd_subscribers_connection (int fd, bool accepted, void *arg)
{
    herd_subscribers_t *self = (herd_subscribers_t *) arg;
    //  One fd is one connection until its DISCONNECTED, which libzmq tells
    //  before the fd is closed and can be reused
    s_connection_t *entry = s_find (self, fd);
    if (entry) {
        if (!entry->dropped)
            self->count--;
        zlistx_delete (self->connections, zlistx_find (self->connections, entry));
        freen (entry);
        self->freed = true;
    }
    if (!accepted)
        return;
    entry = (s_connection_t *) zmalloc (sizeof (s_connection_t));
    entry->fd = fd;
    entry->peer_size = sizeof entry->peer;
    if (getpeername (fd, (struct sockaddr *) &entry->peer, &entry->peer_size)) {
        freen (entry);
        return;                 //  Gone already: its DISCONNECTED follows
    }
    char port [8];
    herd_address_name ((struct sockaddr *) &entry->peer, entry->peer_size, entry->host, sizeof entry->host,
                       port, sizeof port);
    snprintf (entry->peer_text, sizeof entry->peer_text, "%s:%s", entry->host, port);
    entry->accepted = zclock_mono ();
    s_progress (entry, &entry->acked, &entry->behind);
    zlistx_add_end (self->connections, entry);
    self->count++;
    if (self->count > self->max_subscribers) {
        //  Room for the newcomer from the slowest; while all keep up, the
        //  newcomer is the one that goes
        s_connection_t *victim = s_slowest (self);
        self->dropped_room++;
        char *why = zsys_sprintf ("more than %zu %ss, and it was the slowest", self->max_subscribers,
                                  self->subscribers);
        s_drop (self, victim? victim: entry, "room", victim? why: "every other one keeps up: no room for it");
        freen (why);
    }
}

void
herd_subscribers_clear (herd_subscribers_t *self)
{
    assert (self);
    s_connection_t *entry;
    while ((entry = (s_connection_t *) zlistx_detach (self->connections, NULL)))
        freen (entry);
    self->count = 0;
    self->freed = true;
}

void
herd_subscribers_tick (herd_subscribers_t *self)
{
    assert (self);
    int64_t now = zclock_mono ();
    for (s_connection_t *entry = (s_connection_t *) zlistx_first (self->connections); entry;
         entry = (s_connection_t *) zlistx_next (self->connections)) {
        if (entry->dropped)
            continue;
        uint64_t acked;
        uint32_t behind;
        if (!s_same_connection (self, entry) || !s_progress (entry, &acked, &behind))
            continue;           //  On its way out: its DISCONNECTED comes
        if (behind && acked == entry->acked) {
            if (!entry->stalled_since)
                entry->stalled_since = now;
        }
        else
            entry->stalled_since = 0;
        entry->acked = acked;
        entry->behind = behind;
        if (entry->stalled_since && now - entry->stalled_since >= self->max_stall) {
            self->dropped_stalled++;
            //  The bound it crossed: the stall as measured is that plus
            //  up to a tick or two, as the ticks saw its last progress
            char *why = zsys_sprintf ("took nothing for %" PRId64 " s", self->max_stall / 1000);
            s_drop (self, entry, "stalled", why);
            freen (why);
        }
    }
    //  libzmq freed the queues of those that went: give the pages back,
    //  or a server keeps the peak of every flood it lived through
    if (self->freed) {
        self->freed = false;
        malloc_trim (0);
    }
}

size_t
herd_subscribers_count (herd_subscribers_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
herd_subscribers_dropped_stalled (herd_subscribers_t *self)
{
    assert (self);
    return self->dropped_stalled;
}

uint64_t
herd_subscribers_dropped_room (herd_subscribers_t *self)
{
    assert (self);
    return self->dropped_room;
}

//  --------------------------------------------------------------------------
//  Selftest: a plain XPUB, one subscriber that reads, one that never does

void
herd_subscribers_test (bool verbose)
{
    printf (" * herd_subscribers: ");
    if (verbose)
        printf ("\n");
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    int port = zsock_bind (xpub, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_set_sndhwm (xpub, 100000);
    zsock_set_xpub_verbose (xpub, 1);       //  Both subscriptions to "" come up
    herd_subscribers_t *subscribers = herd_subscribers_new ("feed", "monitor", port, 2, 300);
    zactor_t *monitor = zactor_new (zmonitor, xpub);
    zstr_sendx (monitor, "LISTEN", "ACCEPTED", "DISCONNECTED", NULL);
    zstr_send (monitor, "START");
    zsock_wait (monitor);
    char *endpoint = zsys_sprintf ("tcp://127.0.0.1:%d", port);
    zsock_t *reader = zsock_new_sub (endpoint, "");
    zsock_set_rcvtimeo (reader, 0);
    zsock_t *stuck = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (stuck, 1);
    zsock_set_rcvbuf (stuck, 4096);
    zsock_set_subscribe (stuck, "");
    zsock_connect (stuck, "%s", endpoint);
    //  Both subscribe; then updates flow, and only one reads them
    for (int seen = 0; seen < 2; ) {
        zframe_t *frame = zframe_recv (xpub);
        seen += frame && zframe_size (frame) == 1;
        zframe_destroy (&frame);
    }
    zpoller_t *poller = zpoller_new (monitor, NULL);
    char payload [512];
    memset (payload, 'x', sizeof payload);
    int64_t deadline = zclock_mono () + 20000;
    while (herd_subscribers_dropped_stalled (subscribers) == 0 && zclock_mono () < deadline) {
        for (int message = 0; message < 200; message++)
            zmq_send (zsock_resolve (xpub), payload, sizeof payload, ZMQ_DONTWAIT);
        zframe_t *drained;
        while ((drained = zframe_recv (reader)))
            zframe_destroy (&drained);
        while (zpoller_wait (poller, 0) == monitor) {
            char *event, *value;
            zstr_recvx (monitor, &event, &value, NULL);
            herd_subscribers_connection (atoi (value), streq (event, "ACCEPTED"), subscribers);
            freen (event);
            freen (value);
        }
        herd_subscribers_tick (subscribers);
        zclock_sleep (20);
    }
    //  The one that never reads was dropped, the reader kept
    assert (herd_subscribers_dropped_stalled (subscribers) == 1);
    assert (herd_subscribers_count (subscribers) == 1);
    zstr_send (xpub, "last");
    zsock_set_rcvtimeo (reader, 5000);
    char *last = NULL;
    while ((last = zstr_recv (reader)) && strneq (last, "last"))
        freen (last);
    assert (last);
    freen (last);
    zpoller_destroy (&poller);
    zsock_destroy (&stuck);
    zsock_destroy (&reader);
    zactor_destroy (&monitor);
    zsock_destroy (&xpub);
    herd_subscribers_destroy (&subscribers);
    assert (subscribers == NULL);
    freen (endpoint);
    printf ("OK\n");
}
