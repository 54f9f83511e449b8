//  tests/herd_load.c: a load generator for herd's client port (make bench,
//  make soak, the soak test).
//
//  herd_load HOST PORT CONNECTIONS DEPTH SECONDS [PREFIX]
//  Each connection (a thread) keeps DEPTH IAMATs in flight: it writes
//  DEPTH lines in one write, reads DEPTH replies, and again, until SECONDS
//  pass. Client ids cycle through 100,000 per connection, times rise, so
//  every IAMAT is stored and flooded. Prints one line:
//      <replies> replies in <secs> s: <rate>/s, p50 <us> us, p99 <us> us, <errors> errors
//  (latency is per round trip of a batch). Exit 1 if a connection failed.

#include "../herd_classes.h"
#include <pthread.h>
#include <netdb.h>
#include <netinet/tcp.h>

typedef struct {
    const char *host, *port, *prefix;
    int number;                 //  Connection number
    int depth;
    double seconds;
    uint64_t replies;
    uint64_t errors;
    int64_t *latency;           //  usecs per batch (owned)
    size_t batches, capacity;
    bool failed;
} s_connection_t;

static void *
s_run (void *arg)
{
    s_connection_t *self = (s_connection_t *) arg;
    struct addrinfo hints = { 0 }, *address = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo (self->host, self->port, &hints, &address)) {
        self->failed = true;
        return NULL;
    }
    int fd = socket (address->ai_family, SOCK_STREAM, 0);
    if (connect (fd, address->ai_addr, address->ai_addrlen)) {
        freeaddrinfo (address);
        self->failed = true;
        return NULL;
    }
    freeaddrinfo (address);
    int on = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    struct timeval timeout = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    size_t size = (size_t) self->depth * 128;
    char *batch = (char *) malloc (size);
    char *input = (char *) malloc (65536);
    uint64_t sequence = 0;
    int64_t deadline = zclock_usecs () + (int64_t) (self->seconds * 1e6);
    while (zclock_usecs () < deadline) {
        size_t used = 0;
        for (int line = 0; line < self->depth; line++, sequence++)
            used += snprintf (batch + used, size - used, "IAMAT %s%d.%" PRIu64 " +%d.5-%d.25 %" PRIu64 ".%09d\n",
                              self->prefix, self->number, sequence % 100000, (int) (sequence % 80),
                              (int) (sequence % 170), 1000000 + sequence, self->number);
        int64_t started = zclock_usecs ();
        if (write (fd, batch, used) != (ssize_t) used) {
            self->failed = true;
            break;
        }
        int pending = self->depth;
        while (pending > 0) {
            ssize_t got = read (fd, input, 65536);
            if (got <= 0) {
                self->failed = true;
                break;
            }
            for (ssize_t index = 0; index < got; index++)
                if (input [index] == '\n') {
                    pending--;
                    self->replies++;
                    self->errors += index + 1 < got && input [index + 1] == '?';
                }
        }
        if (self->failed)
            break;
        if (self->batches == self->capacity) {
            self->capacity = self->capacity? self->capacity * 2: 1024;
            self->latency = (int64_t *) realloc (self->latency, self->capacity * sizeof (int64_t));
        }
        self->latency [self->batches++] = zclock_usecs () - started;
    }
    close (fd);
    freen (batch);
    freen (input);
    return NULL;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

int
main (int argc, char *argv [])
{
    if (argc < 6) {
        fprintf (stderr, "usage: herd_load HOST PORT CONNECTIONS DEPTH SECONDS [PREFIX]\n");
        return 2;
    }
    int count = atoi (argv [3]);
    s_connection_t *connections = (s_connection_t *) calloc (count, sizeof (s_connection_t));
    pthread_t *threads = (pthread_t *) calloc (count, sizeof (pthread_t));
    int64_t started = zclock_usecs ();
    for (int index = 0; index < count; index++) {
        s_connection_t *connection = &connections [index];
        connection->host = argv [1];
        connection->port = argv [2];
        connection->prefix = argc > 6? argv [6]: "load";
        connection->number = index;
        connection->depth = atoi (argv [4]);
        connection->seconds = atof (argv [5]);
        pthread_create (&threads [index], NULL, s_run, &connections [index]);
    }
    uint64_t replies = 0, errors = 0;
    size_t batches = 0;
    int failed = 0;
    for (int index = 0; index < count; index++) {
        pthread_join (threads [index], NULL);
        replies += connections [index].replies;
        errors += connections [index].errors;
        batches += connections [index].batches;
        failed += connections [index].failed;
    }
    double seconds = (zclock_usecs () - started) / 1e6;
    int64_t *all = (int64_t *) malloc ((batches + 1) * sizeof (int64_t));
    size_t held = 0;
    for (int index = 0; index < count; index++) {
        memcpy (all + held, connections [index].latency, connections [index].batches * sizeof (int64_t));
        held += connections [index].batches;
        freen (connections [index].latency);
    }
    qsort (all, held, sizeof (int64_t), s_compare);
    printf ("%" PRIu64 " replies in %.2f s: %.0f/s, p50 %" PRId64 " us, p99 %" PRId64 " us, %" PRIu64
            " errors, %d connections failed\n", replies, seconds, replies / seconds,
            held? all [held / 2]: 0, held? all [held * 99 / 100]: 0, errors, failed);
    freen (all);
    freen (threads);
    freen (connections);
    return failed? 1: 0;
}
