//  frontend/herd_listener.c: the client listener.

#include "frontend/herd_frontend_layer.h"
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define S_ACCEPT_RETRY      100     //  msecs to pause accepting on EMFILE

//  The plain port and the TLS port
#define S_SOCKETS_MAX       2

typedef struct {
    struct _herd_listener_t *listener;
    int fd;                     //  The listening socket
    void *tag;                  //  Handed to admit with each connection
} s_socket_t;

struct _herd_listener_t {
    zloop_t *loop;              //  Borrowed
    s_socket_t sockets [S_SOCKETS_MAX];
    size_t socket_count;
    bool polled;                //  In the loop now (not paused)
    herd_listener_admit_fn *admit;
    void *arg;
    size_t max_per_address;     //  0: no bound
    herd_tally_t *per_address;  //  Connections open from each address
    uint64_t refused_address;   //  Refused at max_per_address
    int pause_timer;            //  zloop timer id while paused, else 0
};

static int s_handle_accept (zloop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_poll (herd_listener_t *self, bool on)
{
    for (size_t index = 0; index < self->socket_count; index++) {
        s_socket_t *socket = &self->sockets [index];
        zmq_pollitem_t item = { NULL, socket->fd, ZMQ_POLLIN, 0 };
        if (on && !self->polled)
            zloop_poller (self->loop, &item, s_handle_accept, socket);
        else
        if (!on && self->polled)
            zloop_poller_end (self->loop, &item);
    }
    self->polled = on;
}

static int
s_resume (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_listener_t *self = (herd_listener_t *) arg;
    self->pause_timer = 0;
    s_poll (self, true);
    zsys_info ("accept: resumed");
    return 0;
}

static int
s_handle_accept (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    s_socket_t *socket = (s_socket_t *) arg;
    herd_listener_t *self = socket->listener;
    while (self->polled) {
        struct sockaddr_storage remote;
        socklen_t remote_size = sizeof remote;
        int fd = accept4 (socket->fd, (struct sockaddr *) &remote, &remote_size,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                //  The listener is level-triggered and would spin: pause it
                zsys_warning ("accept: %s; pausing accepts for %d ms", strerror (errno), S_ACCEPT_RETRY);
                s_poll (self, false);
                self->pause_timer = zloop_timer (self->loop, S_ACCEPT_RETRY, 1, s_resume, self);
            }
            return 0;               //  EAGAIN: no more waiting
        }
        char host [INET6_ADDRSTRLEN], port [8];
        herd_address_name ((struct sockaddr *) &remote, remote_size, host, sizeof host, port, sizeof port);
        size_t held = herd_tally_count (self->per_address, host);
        if (self->max_per_address && held >= self->max_per_address) {
            if (self->refused_address++ % 1000 == 0)
                zsys_warning ("refused a connection from %s: %zu open from there "
                              "(herd/max_per_address; 1 in 1000 such refusals is logged)", host, held);
            close (fd);
            continue;
        }
        int on = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        char address [INET6_ADDRSTRLEN + 8];
        snprintf (address, sizeof address, "%s:%s", host, port);
        if (self->admit (fd, host, address, socket->tag, self->arg) == -1) {
            close (fd);
            continue;
        }
        herd_tally_add (self->per_address, host);
    }
    return 0;
}

herd_listener_t *
herd_listener_new (zloop_t *loop, size_t max_per_address, herd_listener_admit_fn *admit, void *arg)
{
    assert (loop && admit);
    herd_listener_t *self = (herd_listener_t *) zmalloc (sizeof (herd_listener_t));
    self->loop = loop;
    self->admit = admit;
    self->arg = arg;
    self->max_per_address = max_per_address;
    self->per_address = herd_tally_new ();
    return self;
}

int
herd_listener_bind (herd_listener_t *self, const char *endpoint, const char *setting, void *tag,
                    char **error_p)
{
    assert (self && endpoint && setting && error_p);
    assert (self->socket_count < S_SOCKETS_MAX);
    struct addrinfo *addresses = NULL;
    char *error = NULL;
    if (herd_address_resolve (endpoint, true, &addresses, &error)) {
        *error_p = zsys_sprintf ("cannot listen on %s (%s)", error, setting);
        freen (error);
        return -1;
    }
    int fd = socket (addresses->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd == -1
    ||  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1
    ||  bind (fd, addresses->ai_addr, addresses->ai_addrlen) == -1
    ||  listen (fd, SOMAXCONN) == -1) {
        *error_p = zsys_sprintf ("cannot listen on %s (%s): %s", endpoint, setting, strerror (errno));
        if (fd != -1)
            close (fd);
        fd = -1;
    }
    freeaddrinfo (addresses);
    if (fd == -1)
        return -1;
    //  Out of the loop while the list changes, then in with the new one
    bool polled = self->polled || self->socket_count == 0;
    s_poll (self, false);
    s_socket_t *socket = &self->sockets [self->socket_count++];
    socket->listener = self;
    socket->fd = fd;
    socket->tag = tag;
    if (polled && !self->pause_timer)
        s_poll (self, true);
    return (int) self->socket_count - 1;
}

void
herd_listener_destroy (herd_listener_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_listener_t *self = *self_p;
        s_poll (self, false);
        //  A pause's timer must not call us back
        if (self->pause_timer)
            zloop_timer_end (self->loop, self->pause_timer);
        for (size_t index = 0; index < self->socket_count; index++)
            close (self->sockets [index].fd);
        herd_tally_destroy (&self->per_address);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_listener_set_max_per_address (herd_listener_t *self, size_t max_per_address)
{
    assert (self);
    self->max_per_address = max_per_address;
}

void
herd_listener_release (herd_listener_t *self, const char *host)
{
    assert (self && host);
    herd_tally_remove (self->per_address, host);
}

int
herd_listener_port (herd_listener_t *self, int socket)
{
    assert (self);
    if (socket < 0 || (size_t) socket >= self->socket_count)
        return 0;
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    if (getsockname (self->sockets [socket].fd, (struct sockaddr *) &address, &size))
        return 0;
    return ntohs (address.ss_family == AF_INET6? ((struct sockaddr_in6 *) &address)->sin6_port
                                               : ((struct sockaddr_in *) &address)->sin_port);
}

uint64_t
herd_listener_refused_per_address (herd_listener_t *self)
{
    assert (self);
    return self->refused_address;
}

//  --------------------------------------------------------------------------
//  Selftest: admits by the handler's word and the per-address bound

static int s_admitted = 0;
static int s_fds [8];

static int
s_test_admit (int fd, const char *host, const char *address, void *tag, void *arg)
{
    (void) arg;
    assert (tag == &s_admitted);
    assert (streq (host, "127.0.0.1") && !strncmp (address, "127.0.0.1:", 10));
    //  The handler says no to the fourth
    if (s_admitted == 3)
        return -1;
    s_fds [s_admitted++] = fd;
    return 0;
}

//  True once a client's socket reads end of file or a reset
static bool
s_test_closed (int fd, zloop_t *loop)
{
    fcntl (fd, F_SETFL, O_NONBLOCK);
    char byte;
    for (int round = 0; round < 200; round++) {
        herd_loop_run_for (loop, 5);
        ssize_t got = read (fd, &byte, 1);
        if (got == 0 || (got == -1 && errno != EAGAIN))
            return true;
    }
    return false;
}

void
herd_listener_test (bool verbose)
{
    printf (" * herd_listener: ");
    if (verbose)
        printf ("\n");
    zloop_t *loop = zloop_new ();
    char *error = NULL;
    herd_listener_t *listener = herd_listener_new (loop, 2, s_test_admit, NULL);
    assert (herd_listener_bind (listener, "127.0.0.1:no", "test", &s_admitted, &error) == -1);
    assert (error && strstr (error, "(test)") && !strchr (error, '\n'));
    freen (error);
    assert (herd_listener_bind (listener, "127.0.0.1:0", "test", &s_admitted, &error) == 0);
    int port = herd_listener_port (listener, 0);
    assert (port > 0);
    //  Two from one address are taken; the third is over the bound
    int first = herd_loop_connect (port);
    int second = herd_loop_connect (port);
    for (int round = 0; round < 200 && s_admitted < 2; round++)
        herd_loop_run_for (loop, 5);
    assert (s_admitted == 2);
    int third = herd_loop_connect (port);
    assert (s_test_closed (third, loop));
    assert (s_admitted == 2 && herd_listener_refused_per_address (listener) == 1);
    //  One closes: room for one more
    close (s_fds [0]);
    herd_listener_release (listener, "127.0.0.1");
    int fourth = herd_loop_connect (port);
    for (int round = 0; round < 200 && s_admitted < 3; round++)
        herd_loop_run_for (loop, 5);
    assert (s_admitted == 3);
    //  The handler refuses the next: closed, not counted against the address
    close (s_fds [1]);
    herd_listener_release (listener, "127.0.0.1");
    int fifth = herd_loop_connect (port);
    assert (s_test_closed (fifth, loop));
    assert (herd_listener_refused_per_address (listener) == 1);
    close (s_fds [2]);
    close (first);
    close (second);
    close (third);
    close (fourth);
    close (fifth);
    herd_listener_destroy (&listener);
    assert (listener == NULL);
    zloop_destroy (&loop);
    printf ("OK\n");
}
