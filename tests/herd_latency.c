//  tests/herd_latency.c: propagation latency probe for make bench.
//
//  herd_latency HOST PORT FEED_ENDPOINT RATE SECONDS [CERT SERVER_CERT]
//  Sends IAMATs to one server's client port at RATE a second (in batches
//  every millisecond, from a zloop timer), subscribes to another server's
//  update feed, and prints p50/p99 of the time from sending an IAMAT to
//  seeing its update accepted there. In C so the probe adds little of its
//  own to the figure. With CERT (a secret certificate, as herd --keygen
//  writes) and SERVER_CERT (the far server's public one) the link is CURVE.

#include "../herd_classes.h"
#include <netdb.h>
#include <netinet/tcp.h>

typedef struct {
    int fd;                     //  TCP to the entry server
    zsock_t *sub;               //  On the far server's bus
    int64_t *sent;              //  usecs when update n was sent
    int64_t *latency;           //  usecs until it was seen, -1 if not yet
    size_t total;               //  Updates to send
    size_t next;                //  Next to send
    size_t seen;
    size_t rate;                //  Updates a second
    int64_t started;
} s_probe_t;

static int
s_send_batch (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_probe_t *self = (s_probe_t *) arg;
    //  Catch up with the schedule if a tick came late
    size_t due = (size_t) ((zclock_usecs () - self->started) * self->rate / 1000000);
    if (due > self->total)
        due = self->total;
    char batch [65536];
    size_t size = 0;
    while (self->next < due && size < sizeof batch - 100) {
        self->sent [self->next] = zclock_usecs ();
        size += snprintf (batch + size, sizeof batch - size, "IAMAT lat%zu +1+1 %zu\n",
                          self->next, self->next + 1);
        self->next++;
    }
    for (size_t done = 0; done < size; ) {
        ssize_t written = write (self->fd, batch + done, size - done);
        if (written <= 0)
            return -1;
        done += written;
    }
    return 0;
}

static int
s_drain_replies (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) arg;
    char buffer [65536];
    return read (item->fd, buffer, sizeof buffer) > 0? 0: -1;
}

static int
s_receive (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_probe_t *self = (s_probe_t *) arg;
    herd_bus_feed_msg_t message;
    if (herd_bus_msg_receive_feed (zsock_resolve (reader), &message) != 1)
        return 0;
    herd_bus_msg_t update = message.decoded;
    if (update.at.client.size > 3 && update.at.client.size < 24 && !memcmp (update.at.client.start, "lat", 3)) {
        char number [24];
        memcpy (number, update.at.client.start + 3, update.at.client.size - 3);
        number [update.at.client.size - 3] = 0;
        size_t n = strtoul (number, NULL, 10);
        if (n < self->total && self->latency [n] < 0) {
            self->latency [n] = zclock_usecs () - self->sent [n];
            self->seen++;
        }
    }
    herd_bus_msg_feed_close (&message);
    return self->seen == self->total? -1: 0;
}

static int
s_give_up (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t left = *(const int64_t *) a, right = *(const int64_t *) b;
    return left < right? -1: left > right;
}

int
main (int argc, char *argv [])
{
    if (argc != 6 && argc != 8) {
        fprintf (stderr, "usage: herd_latency HOST PORT FEED_ENDPOINT RATE SECONDS [CERT SERVER_CERT]\n");
        return 2;
    }
    zsys_init ();
    s_probe_t self = { 0 };
    long rate = atol (argv [4]);
    self.total = (size_t) (rate * atof (argv [5]));
    self.rate = (size_t) rate;
    self.sent = (int64_t *) calloc (self.total, sizeof (int64_t));
    self.latency = (int64_t *) malloc (self.total * sizeof (int64_t));
    for (size_t n = 0; n < self.total; n++)
        self.latency [n] = -1;
    struct addrinfo hints = { 0 }, *address = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo (argv [1], argv [2], &hints, &address))
        return 1;
    self.fd = socket (address->ai_family, SOCK_STREAM, 0);
    if (connect (self.fd, address->ai_addr, address->ai_addrlen)) {
        perror ("herd_latency: connect");
        return 1;
    }
    freeaddrinfo (address);
    int on = 1;
    setsockopt (self.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    self.sub = zsock_new (ZMQ_SUB);
    zsock_set_subscribe (self.sub, "lat");
    if (argc == 8) {
        zcert_t *cert = herd_keys_load (argv [6]);
        zcert_t *server = herd_keys_load (argv [7]);
        if (!cert || !server) {
            fprintf (stderr, "herd_latency: cannot load %s or %s\n", argv [6], argv [7]);
            return 1;
        }
        zcert_apply (cert, self.sub);
        zsock_set_curve_serverkey (self.sub, zcert_public_txt (server));
        zcert_destroy (&cert);
        zcert_destroy (&server);
    }
    zsock_connect (self.sub, "%s", argv [3]);
    //  Slow joiner: updates until the first comes through
    for (int attempt = 0; attempt < 200; attempt++) {
        char line [64];
        int size = snprintf (line, sizeof line, "IAMAT latwarm +1+1 %d\n", attempt + 1);
        if (write (self.fd, line, size) != size)
            return 1;
        zsock_set_rcvtimeo (self.sub, 50);
        zmsg_t *msg = zmsg_recv (self.sub);
        if (msg) {
            zmsg_destroy (&msg);
            break;
        }
    }
    zsock_set_rcvtimeo (self.sub, -1);
    zloop_t *loop = zloop_new ();
    zloop_reader (loop, self.sub, s_receive, &self);
    zmq_pollitem_t item = { NULL, self.fd, ZMQ_POLLIN, 0 };
    zloop_poller (loop, &item, s_drain_replies, &self);
    zloop_timer (loop, 1, 0, s_send_batch, &self);
    zloop_timer (loop, (size_t) (atof (argv [5]) * 1000) + 5000, 1, s_give_up, NULL);
    self.started = zclock_usecs ();
    zloop_start (loop);
    zloop_destroy (&loop);
    int64_t *seen = (int64_t *) malloc (self.total * sizeof (int64_t));
    size_t count = 0;
    for (size_t n = 0; n < self.total; n++)
        if (self.latency [n] >= 0)
            seen [count++] = self.latency [n];
    qsort (seen, count, sizeof (int64_t), s_compare);
    if (count)
        printf ("%zu of %zu updates seen: p50 %" PRId64 " us, p99 %" PRId64 " us, max %" PRId64 " us\n",
                count, self.total, seen [count / 2], seen [count * 99 / 100], seen [count - 1]);
    else
        printf ("0 of %zu updates seen\n", self.total);
    freen (seen);
    freen (self.sent);
    freen (self.latency);
    zsock_destroy (&self.sub);
    close (self.fd);
    return count == self.total? 0: 1;
}
