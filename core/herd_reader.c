//  core/herd_reader.c: a ZeroMQ socket read in a zloop through its ZMQ_FD.

#include "core/herd_core_layer.h"

struct _herd_reader_t {
    zloop_t *loop;              //  Borrowed
    void *sock;                 //  Borrowed: a zsock_t or a zactor_t
    zloop_reader_fn *handler;
    void *arg;
    zmq_pollitem_t item;        //  The socket's ZMQ_FD, polled by the loop
    int timer;                  //  Calls us each pass while a message waits
                                //  that the descriptor will not announce; -1
    bool retired;               //  Out of the loop, memory kept a while
    int64_t retired_at;         //  zclock_mono
};

//  Readers retired from a running loop, in this thread: zloop ends a timer
//  or a poller only at the end of the pass (its timers list and pollset
//  still hold them until then), so their memory outlives the pass
static __thread zlistx_t *s_retired = NULL;
#define S_RETIRED_MSECS 1000

static int s_read (herd_reader_t *self);

static int
s_on_descriptor (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    herd_reader_t *self = (herd_reader_t *) arg;
    return self->retired? 0: s_read (self);
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_reader_t *self = (herd_reader_t *) arg;
    return self->retired? 0: s_read (self);
}

//  Frees retired readers older than age msecs (0: all)
static void
s_bury (int64_t age)
{
    if (!s_retired)
        return;
    int64_t now = zclock_mono ();
    herd_reader_t *reader = (herd_reader_t *) zlistx_first (s_retired);
    while (reader && now - reader->retired_at >= age) {
        zlistx_delete (s_retired, zlistx_cursor (s_retired));
        freen (reader);
        reader = (herd_reader_t *) zlistx_first (s_retired);
    }
    if (zlistx_size (s_retired) == 0)
        zlistx_destroy (&s_retired);
}

static bool
s_waiting (herd_reader_t *self)
{
    //  Asking for ZMQ_EVENTS also takes the commands that made the
    //  descriptor fire, so it goes quiet until the next one
    return (zsock_events (self->sock) & ZMQ_POLLIN) != 0;
}

static void
s_stop_timer (herd_reader_t *self)
{
    if (self->timer != -1) {
        zloop_timer_end (self->loop, self->timer);
        self->timer = -1;
    }
}

//  One handler call a pass while a message waits, as zloop_reader makes
static int
s_read (herd_reader_t *self)
{
    if (!s_waiting (self)) {
        s_stop_timer (self);
        return 0;
    }
    int rc = self->handler (self->loop, (zsock_t *) self->sock, self->arg);
    if (rc == 0)
        herd_reader_check (self);
    return rc;
}

herd_reader_t *
herd_reader_new (zloop_t *loop, void *sock, zloop_reader_fn handler, void *arg)
{
    assert (loop && sock && handler);
    herd_reader_t *self = (herd_reader_t *) zmalloc (sizeof (herd_reader_t));
    self->loop = loop;
    self->sock = sock;
    self->handler = handler;
    self->arg = arg;
    self->timer = -1;
    self->item.fd = zsock_fd (sock);
    self->item.events = ZMQ_POLLIN;
    int rc = zloop_poller (loop, &self->item, s_on_descriptor, self);
    assert (rc == 0);
    //  What came before we looked does not fire the descriptor again
    herd_reader_check (self);
    return self;
}

//  Out of the loop: its descriptor and its timer
static void
s_leave_loop (herd_reader_t *self)
{
    zloop_poller_end (self->loop, &self->item);
    s_stop_timer (self);
}

void
herd_reader_destroy (herd_reader_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_reader_t *self = *self_p;
        s_leave_loop (self);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_reader_retire (herd_reader_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_reader_t *self = *self_p;
        s_leave_loop (self);
        self->retired = true;
        self->retired_at = zclock_mono ();
        s_bury (S_RETIRED_MSECS);
        if (!s_retired)
            s_retired = zlistx_new ();
        zlistx_add_end (s_retired, self);
        *self_p = NULL;
    }
}

void
herd_reader_collect (void)
{
    s_bury (0);
}

void
herd_reader_check (herd_reader_t *self)
{
    assert (self);
    if (!s_waiting (self))
        s_stop_timer (self);
    else
    if (self->timer == -1)
        //  Repeats with no delay: once a pass until the socket is drained
        self->timer = zloop_timer (self->loop, 0, 0, s_on_timer, self);
}

//  --------------------------------------------------------------------------
//  Selftest

static int s_handled = 0;

//  Takes one message a call, as most handlers do
static int
s_take_one (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    char *text = zstr_recv (reader);
    assert (text);
    freen (text);
    s_handled++;
    return 0;
}

void
herd_reader_test (bool verbose)
{
    printf (" * herd_reader: ");
    if (verbose)
        printf ("\n");
    zloop_t *loop = zloop_new ();
    zsock_t *writer = zsock_new_pair ("@inproc://herd-reader-test");
    zsock_t *reader_sock = zsock_new_pair (">inproc://herd-reader-test");
    assert (writer && reader_sock);

    //  Messages sent before the reader existed are read all the same,
    //  though the descriptor fires once for all of them
    for (int count = 0; count < 5; count++)
        zstr_send (writer, "early");
    zclock_sleep (20);
    herd_reader_t *reader = herd_reader_new (loop, reader_sock, s_take_one, NULL);
    herd_loop_run_for (loop, 30);
    assert (s_handled == 5);

    //  And those that arrive while the loop waits
    for (int count = 0; count < 100; count++)
        zstr_send (writer, "later");
    herd_loop_run_for (loop, 50);
    assert (s_handled == 105);

    //  A request-reply round: the reply is read though our own send on
    //  the socket may have taken its signal (herd_reader_check)
    for (int round = 0; round < 50; round++) {
        zstr_send (reader_sock, "ping");
        herd_reader_check (reader);
        char *ping = zstr_recv (writer);
        assert (ping && streq (ping, "ping"));
        freen (ping);
        zstr_send (writer, "pong");
    }
    herd_loop_run_for (loop, 50);
    assert (s_handled == 155);

    //  Nothing waiting: the loop sleeps rather than spins, and no timer
    //  is left behind to keep it awake
    assert (reader->timer == -1);

    //  Once destroyed, the socket is out of the loop
    herd_reader_destroy (&reader);
    assert (reader == NULL);
    zstr_send (writer, "unread");
    herd_loop_run_for (loop, 20);
    assert (s_handled == 155);

    //  Retired: out of the loop at once, freed by collect
    reader = herd_reader_new (loop, reader_sock, s_take_one, NULL);
    herd_reader_retire (&reader);
    assert (reader == NULL);
    herd_loop_run_for (loop, 20);
    assert (s_handled == 155);
    herd_reader_collect ();

    zloop_destroy (&loop);
    zsock_destroy (&reader_sock);
    zsock_destroy (&writer);
    printf ("OK\n");
}
