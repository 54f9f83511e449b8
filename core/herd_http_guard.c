//  core/herd_http_guard.c: the bounds of a libmicrohttpd endpoint.

#include "core/herd_core_layer.h"
#include <pthread.h>
#include <arpa/inet.h>

//  One connection, from its start (its socket context)
typedef struct {
    int fd;                     //  Its socket, -1 once ended
    int64_t started;            //  zclock_mono
    int64_t progress;           //  A stream: when it last took bytes
    bool stream;                //  A long-lived stream
    bool leaving;               //  Ended by us, not closed yet: counts no more
    void *handle;               //  In connections
    char address [INET6_ADDRSTRLEN];
} s_connection_t;

struct _herd_http_guard_t {
    herd_http_guard_limits_t limits;
    pthread_mutex_t lock;       //  The daemon's threads and the owner's
    zlistx_t *connections;      //  s_connection_t, oldest first (owned)
    herd_tally_t *per_address;  //  Connections open and not leaving, by address
    size_t open;                //  Connections open and not leaving
    size_t streams;             //  Of which streams
    int64_t swept;              //  When admission last swept
    herd_ratelimit_t *log;      //  The daemon's lines, limited (under lock)
    uint64_t evicted, over_age, stalled, refused;
};

herd_http_guard_t *
herd_http_guard_new (const herd_http_guard_limits_t *limits)
{
    assert (limits && limits->max_connections && limits->max_per_address && limits->max_streams);
    herd_http_guard_t *self = (herd_http_guard_t *) zmalloc (sizeof (herd_http_guard_t));
    self->limits = *limits;
    pthread_mutex_init (&self->lock, NULL);
    self->connections = zlistx_new ();
    self->per_address = herd_tally_new ();
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, 1);
    return self;
}

void
herd_http_guard_destroy (herd_http_guard_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_http_guard_t *self = *self_p;
        //  A stopped daemon has closed every connection; any left is freed
        for (void *entry = zlistx_first (self->connections); entry; entry = zlistx_next (self->connections))
            free (entry);
        zlistx_destroy (&self->connections);
        herd_tally_destroy (&self->per_address);
        herd_ratelimit_destroy (&self->log);
        pthread_mutex_destroy (&self->lock);
        freen (self);
        *self_p = NULL;
    }
}

//  Ends a connection: it counts no more, and the daemon closes it
static void
s_end (herd_http_guard_t *self, s_connection_t *entry, uint64_t *counter)
{
    if (entry->fd != -1)
        shutdown (entry->fd, SHUT_RDWR);
    entry->fd = -1;
    entry->leaving = true;
    herd_tally_remove (self->per_address, entry->address);
    self->open--;
    if (entry->stream)
        self->streams--;
    (*counter)++;
}

static size_t
s_sweep (herd_http_guard_t *self, int64_t now)
{
    size_t ended = 0;
    for (s_connection_t *entry = (s_connection_t *) zlistx_first (self->connections); entry;
         entry = (s_connection_t *) zlistx_next (self->connections)) {
        if (entry->leaving)
            continue;
        if (entry->stream && now - entry->progress > self->limits.max_stall) {
            s_end (self, entry, &self->stalled);
            ended++;
        }
        else
        if (!entry->stream && now - entry->started > self->limits.max_age) {
            s_end (self, entry, &self->over_age);
            ended++;
        }
    }
    return ended;
}

//  The oldest request connection still counted, of address if given
static s_connection_t *
s_oldest_request (herd_http_guard_t *self, const char *address)
{
    for (s_connection_t *entry = (s_connection_t *) zlistx_first (self->connections); entry;
         entry = (s_connection_t *) zlistx_next (self->connections))
        if (!entry->leaving && !entry->stream && (!address || streq (entry->address, address)))
            return entry;
    return NULL;
}

enum MHD_Result
herd_http_guard_admit (void *arg, const struct sockaddr *address, socklen_t size)
{
    herd_http_guard_t *self = (herd_http_guard_t *) arg;
    char text [INET6_ADDRSTRLEN];
    herd_address_name (address, size, text, sizeof text, NULL, 0);
    pthread_mutex_lock (&self->lock);
    int64_t now = zclock_mono ();
    if (now - self->swept >= 1000) {
        self->swept = now;
        s_sweep (self, now);
    }
    enum MHD_Result admitted = MHD_YES;
    s_connection_t *victim = NULL;
    if (herd_tally_count (self->per_address, text) >= self->limits.max_per_address) {
        if (!(victim = s_oldest_request (self, text)))
            admitted = MHD_NO;
    }
    else
    if (self->open >= self->limits.max_connections && !(victim = s_oldest_request (self, NULL)))
        admitted = MHD_NO;
    if (victim)
        s_end (self, victim, &self->evicted);
    if (!admitted)
        self->refused++;
    pthread_mutex_unlock (&self->lock);
    return admitted;
}

void
herd_http_guard_notify (void *arg, struct MHD_Connection *connection, void **socket_context,
                        enum MHD_ConnectionNotificationCode code)
{
    herd_http_guard_t *self = (herd_http_guard_t *) arg;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        s_connection_t *entry = (s_connection_t *) zmalloc (sizeof (s_connection_t));
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        entry->fd = info? info->connect_fd: -1;
        info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        herd_address_name (info? info->client_addr: NULL, 0, entry->address, sizeof entry->address, NULL, 0);
        pthread_mutex_lock (&self->lock);
        entry->started = entry->progress = zclock_mono ();
        entry->handle = zlistx_add_end (self->connections, entry);
        herd_tally_add (self->per_address, entry->address);
        self->open++;
        pthread_mutex_unlock (&self->lock);
        *socket_context = entry;
    }
    else
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        s_connection_t *entry = (s_connection_t *) *socket_context;
        pthread_mutex_lock (&self->lock);
        if (!entry->leaving) {
            herd_tally_remove (self->per_address, entry->address);
            self->open--;
            if (entry->stream)
                self->streams--;
        }
        zlistx_delete (self->connections, entry->handle);
        pthread_mutex_unlock (&self->lock);
        freen (entry);
        *socket_context = NULL;
    }
}

void
herd_http_guard_log (void *arg, const char *format, va_list arguments)
{
    herd_http_guard_t *self = (herd_http_guard_t *) arg;
    char line [512];
    vsnprintf (line, sizeof line, format, arguments);
    size_t size = strlen (line);
    while (size && line [size - 1] == '\n')
        line [--size] = 0;
    pthread_mutex_lock (&self->lock);
    herd_ratelimit_log (self->log, "http", LOG_WARNING, "http: %s", line);
    pthread_mutex_unlock (&self->lock);
}

static s_connection_t *
s_entry_of (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info? (s_connection_t *) info->socket_context: NULL;
}

void
herd_http_guard_stream (herd_http_guard_t *self, struct MHD_Connection *connection)
{
    assert (self && connection);
    s_connection_t *entry = s_entry_of (connection);
    pthread_mutex_lock (&self->lock);
    if (entry && !entry->leaving && !entry->stream) {
        entry->stream = true;
        entry->progress = zclock_mono ();
        self->streams++;
        if (self->streams > self->limits.max_streams) {
            s_connection_t *stalest = NULL;
            for (s_connection_t *other = (s_connection_t *) zlistx_first (self->connections); other;
                 other = (s_connection_t *) zlistx_next (self->connections))
                if (other != entry && other->stream && !other->leaving
                &&  (!stalest || other->progress < stalest->progress))
                    stalest = other;
            if (stalest)
                s_end (self, stalest, &self->evicted);
        }
    }
    pthread_mutex_unlock (&self->lock);
}

void
herd_http_guard_progress (herd_http_guard_t *self, struct MHD_Connection *connection)
{
    assert (self && connection);
    s_connection_t *entry = s_entry_of (connection);
    pthread_mutex_lock (&self->lock);
    if (entry)
        entry->progress = zclock_mono ();
    pthread_mutex_unlock (&self->lock);
}

size_t
herd_http_guard_sweep (herd_http_guard_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    size_t ended = s_sweep (self, zclock_mono ());
    pthread_mutex_unlock (&self->lock);
    return ended;
}

void
herd_http_guard_counts (herd_http_guard_t *self, uint64_t *evicted, uint64_t *over_age,
                        uint64_t *stalled, uint64_t *refused)
{
    assert (self && evicted && over_age && stalled && refused);
    pthread_mutex_lock (&self->lock);
    *evicted = self->evicted;
    *over_age = self->over_age;
    *stalled = self->stalled;
    *refused = self->refused;
    pthread_mutex_unlock (&self->lock);
}

//  --------------------------------------------------------------------------
//  Selftest: a daemon that answers "ok", guarded

static herd_http_guard_t *s_test_guard = NULL;

static enum MHD_Result
s_test_answer (void *arg, struct MHD_Connection *connection, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size, void **context)
{
    (void) arg;
    (void) method;
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    if (*context == NULL) {
        *context = connection;
        return MHD_YES;
    }
    if (streq (url, "/stream"))
        herd_http_guard_stream (s_test_guard, connection);
    struct MHD_Response *response = MHD_create_response_from_buffer (3, (void *) "ok\n", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

static int
s_test_connect (int port, const char *source)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET };
    inet_pton (AF_INET, source, &address.sin_addr);
    assert (bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    address.sin_port = htons ((uint16_t) port);
    inet_pton (AF_INET, "127.0.0.1", &address.sin_addr);
    assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
    struct timeval timeout = { 2, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
}

//  True once the server has ended the connection (EOF or reset)
static bool
s_test_ended (int fd)
{
    char buffer [256];
    ssize_t got;
    while ((got = read (fd, buffer, sizeof buffer)) > 0)
        ;
    return got == 0 || (got == -1 && errno == ECONNRESET);
}

static bool
s_test_served (int port, const char *source)
{
    int fd = s_test_connect (port, source);
    const char *request = "GET / HTTP/1.0\r\n\r\n";
    assert (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
    char buffer [512] = "";
    ssize_t got = 0, total = 0;
    while ((got = read (fd, buffer + total, sizeof buffer - 1 - (size_t) total)) > 0)
        total += got;
    buffer [total] = 0;
    close (fd);
    return strstr (buffer, "\r\n\r\nok\n") != NULL;
}

void
herd_http_guard_test (bool verbose)
{
    printf (" * herd_http_guard: ");
    if (verbose)
        printf ("\n");
    herd_http_guard_limits_t limits = { 4, 2, 1, 400, 400 };
    herd_http_guard_t *guard = herd_http_guard_new (&limits);
    s_test_guard = guard;
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_EPOLL_INTERNAL_THREAD, 0, herd_http_guard_admit, guard, s_test_answer, NULL,
        MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 8,
        MHD_OPTION_NOTIFY_CONNECTION, herd_http_guard_notify, guard, MHD_OPTION_END);
    assert (daemon);
    int port = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    //  Two idle sockets hold 127.0.0.2's bound: a third from there is
    //  served, the oldest of the two ended to make room
    int first = s_test_connect (port, "127.0.0.2");
    zclock_sleep (20);
    int second = s_test_connect (port, "127.0.0.2");
    zclock_sleep (20);
    assert (s_test_served (port, "127.0.0.2"));
    assert (s_test_ended (first));
    //  Every connection taken (4) by idle sockets of three addresses: a
    //  fourth address is served, the oldest of all ended
    int third = s_test_connect (port, "127.0.0.3");
    int fourth = s_test_connect (port, "127.0.0.4");
    int fifth = s_test_connect (port, "127.0.0.4");
    zclock_sleep (50);
    assert (s_test_served (port, "127.0.0.5"));
    assert (s_test_ended (second));
    //  Over max_age, the sweep ends the others
    zclock_sleep (500);
    assert (herd_http_guard_sweep (guard) == 3);
    assert (s_test_ended (third) && s_test_ended (fourth) && s_test_ended (fifth));
    //  A stream stays past max_age while it takes bytes; a second stream
    //  ends the first (max_streams 1); a stalled one ends at the sweep
    int stream = s_test_connect (port, "127.0.0.6");
    const char *request = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    assert (write (stream, request, strlen (request)) == (ssize_t) strlen (request));
    zclock_sleep (50);
    int other = s_test_connect (port, "127.0.0.7");
    assert (write (other, request, strlen (request)) == (ssize_t) strlen (request));
    assert (s_test_ended (stream));
    uint64_t evicted, over_age, stalled, refused;
    herd_http_guard_counts (guard, &evicted, &over_age, &stalled, &refused);
    assert (evicted == 3 && over_age == 3 && refused == 0);
    zclock_sleep (500);
    herd_http_guard_sweep (guard);
    herd_http_guard_counts (guard, &evicted, &over_age, &stalled, &refused);
    assert (stalled == 1);
    close (first);
    close (second);
    close (third);
    close (fourth);
    close (fifth);
    close (stream);
    close (other);
    MHD_stop_daemon (daemon);
    herd_http_guard_destroy (&guard);
    assert (guard == NULL);
    printf ("OK\n");
}
