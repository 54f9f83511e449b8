//  tests/herd_load.c: a load generator for herd's client port (make bench,
//  make soak, the soak test).
//
//  herd_load [--distinct TOTAL] [--redis-geoadd | --redis-ping | --whatsat | --redis-geosearch]
//            [--tls CA CERT KEY [--handshakes]] HOST PORT CONNECTIONS DEPTH SECONDS [PREFIX]
//  Each connection (a thread) keeps DEPTH commands in flight: it writes
//  DEPTH lines in one write, reads DEPTH replies, and again, until SECONDS
//  pass. IAMATs by default: client ids cycle through S_CLIENTS per
//  connection, times rise, so every IAMAT is stored and flooded. With
//  --redis-geoadd the same ids and positions go to a Redis server as
//  inline GEOADD commands (the work Redis does that IAMAT does: a point
//  per member), with --redis-ping as PINGs (a line server's ceiling); make
//  bench drives both servers with this one client. Every reply is one
//  line; a reply starting "?" (herd) or "-" (Redis) is an error.
//  --whatsat asks "WHATSAT <PREFIX><connection>.<n> 10 20" instead (the
//  reply: lines up to an empty one); --redis-geosearch asks Redis the same
//  of a geo set named places, "GEOSEARCH places FROMLONLAT <lon> <lat>
//  BYRADIUS 10 km ASC COUNT 20 WITHCOORD", at random points of 40-50 N,
//  10-20 E (the reply: a RESP array of arrays). With
//  --distinct TOTAL the connections send TOTAL commands in all, each for a
//  client id of its own (none repeats, so newer-wins merges nothing), and
//  stop then (or after SECONDS). With --tls each connection speaks TLS
//  (OpenSSL, TLS 1.3, the client certificate CERT and KEY, the server's
//  certificate checked against CA); with --handshakes too, every command
//  goes on a new connection (connect, handshake, one command and its
//  reply, close): the rate is new TLS connections a second. Prints:
//      <replies> replies in <secs> s: <rate>/s, p50 <us> us, p99 <us> us, <errors> errors
//  (latency is per round trip of a batch). Exit 1 if a connection failed.

#include "../herd_classes.h"
#include <pthread.h>
#include <signal.h>
#include <netdb.h>
#include <netinet/tcp.h>

//  Client ids per connection: 50 connections stay under herd/max_stored
#define S_CLIENTS   10000

typedef enum { S_IAMAT, S_GEOADD, S_PING, S_WHATSAT, S_GEOSEARCH } s_command_t;

//  With --tls: every connection's context (thread-safe for SSL_new)
static SSL_CTX *s_tls = NULL;
static bool s_handshakes = false;

typedef struct {
    const char *host, *port, *prefix;
    s_command_t command;
    int number;                 //  Connection number
    int depth;
    double seconds;
    uint64_t limit;             //  Commands to send, each a distinct id; 0: cycle ids until SECONDS
    uint64_t replies;
    uint64_t errors;
    int64_t *latency;           //  usecs per batch (owned)
    unsigned int random;        //  rand_r state: GEOSEARCH points
    size_t batches, capacity;
    bool failed;
} s_connection_t;

//  A connection to the server, TLS if asked: the socket, or -1
static int
s_connect (s_connection_t *self, SSL **tls_p)
{
    struct addrinfo hints = { 0 }, *address = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo (self->host, self->port, &hints, &address))
        return -1;
    int fd = socket (address->ai_family, SOCK_STREAM, 0);
    if (connect (fd, address->ai_addr, address->ai_addrlen)) {
        freeaddrinfo (address);
        close (fd);
        return -1;
    }
    freeaddrinfo (address);
    int on = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    struct timeval timeout = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    *tls_p = NULL;
    if (s_tls) {
        *tls_p = SSL_new (s_tls);
        SSL_set_fd (*tls_p, fd);
        if (SSL_connect (*tls_p) != 1) {
            SSL_free (*tls_p);
            close (fd);
            return -1;
        }
    }
    return fd;
}

static void
s_disconnect (int fd, SSL *tls)
{
    if (tls) {
        SSL_shutdown (tls);
        SSL_free (tls);
    }
    close (fd);
}

//  Where a reader is in the replies: one line each, or a WHATSAT's lines
//  up to an empty one, or a RESP array's lines
typedef struct {
    bool line_start;
    size_t line_size;           //  Bytes of the line so far, its ending not counted
    char first;                 //  The line's first byte
    long number;                //  RESP: the number after it
    bool bulk_next;             //  RESP: the next line is a bulk string's data
    long need;                  //  RESP: items left before the reply is whole
} s_reply_t;

//  Takes one byte of the replies: true when it ends a reply
static bool
s_reply_byte (s_connection_t *self, s_reply_t *reply, char byte)
{
    if (reply->line_start) {
        reply->line_start = false;
        reply->line_size = 0;
        reply->first = byte;
        reply->number = 0;
    }
    if (byte != '\n') {
        if (byte != '\r')
            reply->line_size++;
        //  The count of a RESP array or bulk string ("*3", "$-1"): small
        bool counted = reply->first == '*' || reply->first == '$';
        if (counted && reply->line_size > 1 && byte >= '0' && byte <= '9' && reply->number < 1000000000)
            reply->number = reply->number * 10 + (byte - '0');
        else
        if (counted && reply->line_size == 2 && byte == '-')
            reply->number = -1;
        return false;
    }
    reply->line_start = true;
    if (self->command == S_WHATSAT) {
        //  No line of a WHATSAT answer starts with "?": that is the whole reply
        if (reply->line_size && reply->first == '?') {
            self->errors++;
            return true;
        }
        return reply->line_size == 0;
    }
    if (self->command != S_GEOSEARCH) {
        self->errors += reply->first == '?' || reply->first == '-';
        return true;
    }
    if (reply->bulk_next) {
        reply->bulk_next = false;
        reply->need--;
    }
    else
    if (reply->first == '*')
        reply->need += (reply->number > 0? reply->number: 0) - 1;
    else
    if (reply->first == '$' && reply->number >= 0)
        reply->bulk_next = true;
    else {
        self->errors += reply->first == '-';
        reply->need--;
    }
    if (reply->need > 0)
        return false;
    reply->need = 1;
    return true;
}

static void *
s_run (void *arg)
{
    s_connection_t *self = (s_connection_t *) arg;
    SSL *tls = NULL;
    int fd = s_handshakes? -1: s_connect (self, &tls);
    if (fd == -1 && !s_handshakes) {
        self->failed = true;
        return NULL;
    }
    size_t size = (size_t) self->depth * 160;
    char *batch = (char *) malloc (size);
    char *input = (char *) malloc (65536);
    uint64_t sequence = 0;
    int64_t deadline = zclock_usecs () + (int64_t) (self->seconds * 1e6);
    while (zclock_usecs () < deadline && (!self->limit || sequence < self->limit)) {
        size_t used = 0;
        int lines = 0;
        for (; lines < self->depth && (!self->limit || sequence < self->limit); lines++, sequence++) {
            uint64_t id = self->limit? sequence: sequence % S_CLIENTS;
            if (self->command == S_IAMAT)
                used += snprintf (batch + used, size - used, "IAMAT %s%d.%" PRIu64 " +%d.5-%d.25 %" PRIu64 ".%09d\n",
                                  self->prefix, self->number, id, (int) (sequence % 80),
                                  (int) (sequence % 170), 1000000 + sequence, self->number);
            else
            if (self->command == S_GEOADD)
                used += snprintf (batch + used, size - used, "GEOADD %s -%d.25 %d.5 %d.%" PRIu64 "\r\n",
                                  self->prefix, (int) (sequence % 170), (int) (sequence % 80),
                                  self->number, id);
            else
            if (self->command == S_WHATSAT)
                used += snprintf (batch + used, size - used, "WHATSAT %s%d.%" PRIu64 " 10 20\n",
                                  self->prefix, self->number, id);
            else
            if (self->command == S_GEOSEARCH) {
                double longitude = 10 + rand_r (&self->random) / (double) RAND_MAX * 10;
                double latitude = 40 + rand_r (&self->random) / (double) RAND_MAX * 10;
                used += snprintf (batch + used, size - used, "GEOSEARCH places FROMLONLAT %.6f %.6f "
                                  "BYRADIUS 10 km ASC COUNT 20 WITHCOORD\r\n", longitude, latitude);
            }
            else
                used += snprintf (batch + used, size - used, "PING\r\n");
        }
        int64_t started = zclock_usecs ();
        if (s_handshakes && (fd = s_connect (self, &tls)) == -1) {
            self->failed = true;
            break;
        }
        if ((tls? SSL_write (tls, batch, (int) used): write (fd, batch, used)) != (ssize_t) used) {
            self->failed = true;
            break;
        }
        int pending = lines;
        s_reply_t reply = { .line_start = true, .need = 1 };
        while (pending > 0) {
            ssize_t got = tls? SSL_read (tls, input, 65536): read (fd, input, 65536);
            if (got <= 0) {
                self->failed = true;
                break;
            }
            for (ssize_t index = 0; index < got; index++)
                if (s_reply_byte (self, &reply, input [index])) {
                    pending--;
                    self->replies++;
                }
        }
        if (s_handshakes) {
            s_disconnect (fd, tls);
            fd = -1;
            tls = NULL;
        }
        if (self->failed)
            break;
        if (self->batches == self->capacity) {
            self->capacity = self->capacity? self->capacity * 2: 1024;
            self->latency = (int64_t *) realloc (self->latency, self->capacity * sizeof (int64_t));
        }
        self->latency [self->batches++] = zclock_usecs () - started;
    }
    if (fd != -1)
        s_disconnect (fd, tls);
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
    s_command_t command = S_IAMAT;
    uint64_t total = 0;
    signal (SIGPIPE, SIG_IGN);      //  A server that closes fails a write, not us
    while (argc > 1 && !strncmp (argv [1], "--", 2)) {
        if (streq (argv [1], "--redis-geoadd"))
            command = S_GEOADD;
        else
        if (streq (argv [1], "--redis-ping"))
            command = S_PING;
        else
        if (streq (argv [1], "--whatsat"))
            command = S_WHATSAT;
        else
        if (streq (argv [1], "--redis-geosearch"))
            command = S_GEOSEARCH;
        else
        if (streq (argv [1], "--handshakes"))
            s_handshakes = true;
        else
        if (streq (argv [1], "--tls") && argc > 4) {
            s_tls = SSL_CTX_new (TLS_client_method ());
            SSL_CTX_set_min_proto_version (s_tls, TLS1_3_VERSION);
            SSL_CTX_set_verify (s_tls, SSL_VERIFY_PEER, NULL);
            SSL_CTX_set_session_cache_mode (s_tls, SSL_SESS_CACHE_OFF);
            if (SSL_CTX_load_verify_locations (s_tls, argv [2], NULL) != 1
            ||  SSL_CTX_use_certificate_file (s_tls, argv [3], SSL_FILETYPE_PEM) != 1
            ||  SSL_CTX_use_PrivateKey_file (s_tls, argv [4], SSL_FILETYPE_PEM) != 1) {
                fprintf (stderr, "herd_load: --tls %s %s %s: cannot load them\n", argv [2], argv [3], argv [4]);
                return 2;
            }
            argc -= 3;
            argv += 3;
        }
        else
        if (streq (argv [1], "--distinct") && argc > 2) {
            total = strtoull (argv [2], NULL, 10);
            argc--;
            argv++;
        }
        else
            break;
        argc--;
        argv++;
    }
    if (argc < 6) {
        fprintf (stderr, "usage: herd_load [--distinct TOTAL] [--redis-geoadd | --redis-ping | --whatsat | "
                         "--redis-geosearch] "
                         "[--tls CA CERT KEY [--handshakes]] HOST PORT CONNECTIONS DEPTH SECONDS [PREFIX]\n");
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
        connection->command = command;
        connection->number = index;
        connection->random = (unsigned int) index + 1;
        connection->depth = atoi (argv [4]);
        connection->seconds = atof (argv [5]);
        //  TOTAL shared out: the first connections take one more
        connection->limit = total? total / count + ((uint64_t) index < total % count): 0;
        if (total && !connection->limit)
            continue;
        pthread_create (&threads [index], NULL, s_run, &connections [index]);
    }
    uint64_t replies = 0, errors = 0;
    size_t batches = 0;
    int failed = 0;
    for (int index = 0; index < count; index++) {
        if (total && !connections [index].limit)
            continue;
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
    SSL_CTX_free (s_tls);
    return failed? 1: 0;
}
