//  bus/herd_bus.c: PUB/SUB flooding of updates between neighbours.

#include "herd_classes.h"

//  Messages taken from one SUB per wake-up, so one busy neighbour cannot
//  starve the clients sharing the loop
#define S_BATCH_MAX 256

typedef struct {
    herd_bus_t *bus;            //  Parent, not owned
    char *name;                 //  Neighbour's server name
    zsock_t *sub;               //  SUB connected to its PUB
} s_neighbour_t;

struct _herd_bus_t {
    char *server;               //  Our own name, for logs
    zsock_t *pub;               //  Bound; neighbours and monitors connect
    zlistx_t *neighbours;       //  s_neighbour_t items (owned)
    herd_bus_update_fn *handler;    //  Where received updates go
    void *handler_arg;
    bool log_traffic;           //  Log every update in and out
};

static void
s_neighbour_destroy (void **item_p)
{
    s_neighbour_t *neighbour = (s_neighbour_t *) *item_p;
    if (neighbour) {
        zsock_destroy (&neighbour->sub);
        freen (neighbour->name);
        freen (neighbour);
        *item_p = NULL;
    }
}

herd_bus_t *
herd_bus_new (herd_config_t *config, const char *server, char **error_p)
{
    assert (config);
    assert (error_p);
    herd_bus_t *self = (herd_bus_t *) zmalloc (sizeof (herd_bus_t));
    self->server = strdup (server);
    self->log_traffic = herd_config_number (config, "herd/log_traffic");
    self->neighbours = zlistx_new ();
    zlistx_set_destructor (self->neighbours, s_neighbour_destroy);
    int hwm = (int) herd_config_number (config, "bus/hwm");

    self->pub = zsock_new (ZMQ_PUB);
    assert (self->pub);
    zsock_set_sndhwm (self->pub, hwm);
    zsock_set_linger (self->pub, 0);
    const char *bind = herd_config_bus_bind (config, server);
    if (zsock_bind (self->pub, "%s", bind) == -1) {
        *error_p = zsys_sprintf ("cannot bind bus PUB to %s: %s", bind, zmq_strerror (zmq_errno ()));
        herd_bus_destroy (&self);
        return NULL;
    }
    zlistx_t *names = herd_config_neighbours (config, server);
    const char *name = (const char *) zlistx_first (names);
    for (; name; name = (const char *) zlistx_next (names)) {
        s_neighbour_t *neighbour = (s_neighbour_t *) zmalloc (sizeof (s_neighbour_t));
        neighbour->bus = self;
        neighbour->name = strdup (name);
        neighbour->sub = zsock_new (ZMQ_SUB);
        assert (neighbour->sub);
        zsock_set_rcvhwm (neighbour->sub, hwm);
        zsock_set_maxmsgsize (neighbour->sub, HERD_BUS_MAXMSGSIZE);
        zsock_set_linger (neighbour->sub, 0);
        zsock_set_subscribe (neighbour->sub, "");
        const char *endpoint = herd_config_bus_endpoint (config, name);
        //  Connect succeeds whether or not the neighbour is up; ZeroMQ
        //  reconnects by itself when it comes (back)
        if (zsock_connect (neighbour->sub, "%s", endpoint) == -1) {
            *error_p = zsys_sprintf ("cannot connect bus SUB to %s at %s: %s",
                                     name, endpoint, zmq_strerror (zmq_errno ()));
            s_neighbour_destroy ((void **) &neighbour);
            herd_bus_destroy (&self);
            return NULL;
        }
        zsys_info ("bus: subscribed to %s at %s", name, endpoint);
        zlistx_add_end (self->neighbours, neighbour);
    }
    zsys_info ("bus: publishing on %s", zsock_endpoint (self->pub));
    return self;
}

void
herd_bus_destroy (herd_bus_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_bus_t *self = *self_p;
        zlistx_destroy (&self->neighbours);
        zsock_destroy (&self->pub);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

//  Takes what is waiting on one neighbour's SUB; drops (and logs) anything
//  that is not [client id][AT line for that client]
static int
s_receive_updates (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) reader;
    s_neighbour_t *neighbour = (s_neighbour_t *) arg;
    herd_bus_t *self = neighbour->bus;
    for (int count = 0; count < S_BATCH_MAX; count++) {
        //  ZMQ_EVENTS says whether a whole message waits, so recv won't block
        if (!(zsock_events (neighbour->sub) & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv (neighbour->sub);
        if (!msg)
            break;
        zframe_t *client = zmsg_first (msg);
        zframe_t *line = zmsg_next (msg);
        herd_at_t at;
        char sample [200];
        if (!line || zframe_size (line) == 0
        ||  herd_protocol_parse_at ((char *) zframe_data (line), zframe_size (line), &at)
        ||  at.client.size != zframe_size (client)
        ||  memcmp (at.client.start, zframe_data (client), at.client.size))
            zsys_warning ("bus: dropped malformed update from %s: %s", neighbour->name,
                          line? herd_log_sample ((char *) zframe_data (line), zframe_size (line),
                                                 sample, sizeof sample): "(one frame)");
        else {
            //  Null-terminate for the handler; frames are not
            char *text = zframe_strdup (line);
            if (self->log_traffic)
                zsys_info ("bus: received from %s: %s", neighbour->name, text);
            if (self->handler)
                self->handler (neighbour->name, text, zframe_size (line), self->handler_arg);
            freen (text);
        }
        zmsg_destroy (&msg);
    }
    return 0;
}

void
herd_bus_attach (herd_bus_t *self, zloop_t *loop, herd_bus_update_fn *handler, void *arg)
{
    assert (self);
    self->handler = handler;
    self->handler_arg = arg;
    s_neighbour_t *neighbour = (s_neighbour_t *) zlistx_first (self->neighbours);
    for (; neighbour; neighbour = (s_neighbour_t *) zlistx_next (self->neighbours))
        zloop_reader (loop, neighbour->sub, s_receive_updates, neighbour);
}

int
herd_bus_publish (herd_bus_t *self, const char *client, size_t client_size,
                  const char *line, size_t size)
{
    assert (self);
    void *handle = zsock_resolve (self->pub);
    //  PUB never blocks; it drops for subscribers past their HWM
    if (zmq_send (handle, client, client_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (handle, line, size, ZMQ_DONTWAIT) == -1) {
        zsys_warning ("bus: could not publish update: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    if (self->log_traffic)
        zsys_info ("bus: published: %.*s", (int) size, line);
    return 0;
}

const char *
herd_bus_endpoint (herd_bus_t *self)
{
    assert (self);
    return zsock_endpoint (self->pub);
}

//  --------------------------------------------------------------------------
//  Selftest: two buses linked over inproc, one update each way

static int s_received = 0;
static char s_last [256];

static void
s_on_update (const char *neighbour, const char *line, size_t size, void *arg)
{
    (void) arg;
    (void) neighbour;
    assert (size < sizeof s_last);
    memcpy (s_last, line, size + 1);
    s_received++;
}

static int
s_stop_loop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;                  //  Ends this round of zloop_start
}

void
herd_bus_test (bool verbose)
{
    printf (" * herd_bus: ");
    if (verbose)
        printf ("\n");
    const char *text =
        "herd\n"
        "    log_traffic = 0\n"
        "servers\n"
        "    A\n"
        "        client = 127.0.0.1:1\n"
        "        bus = inproc://herd-bus-test-a\n"
        "        neighbours = B\n"
        "    B\n"
        "        client = 127.0.0.1:2\n"
        "        bus = inproc://herd-bus-test-b\n"
        "        neighbours = A\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "bus-test", &error);
    assert (config);
    herd_bus_t *a = herd_bus_new (config, "A", &error);
    assert (a);
    herd_bus_t *b = herd_bus_new (config, "B", &error);
    assert (b);
    //  Binding the same endpoint twice fails with a clear message
    herd_bus_t *again = herd_bus_new (config, "A", &error);
    assert (!again);
    assert (strstr (error, "cannot bind bus PUB to inproc://herd-bus-test-a"));
    freen (error);

    zloop_t *loop = zloop_new ();
    herd_bus_attach (b, loop, s_on_update, NULL);
    //  Slow joiner: publish until B has seen one, as tests must
    const char *line = "AT A +0.1 kiwi +34-118 100";
    for (int attempt = 0; attempt < 200 && !s_received; attempt++) {
        herd_bus_publish (a, "kiwi", 4, "bad", 3);          //  Dropped by B
        herd_bus_publish (a, "pear", 4, line, strlen (line));  //  Id mismatch: dropped
        herd_bus_publish (a, "kiwi", 4, line, strlen (line));
        zloop_timer (loop, 10, 1, s_stop_loop, NULL);
        zloop_start (loop);
    }
    assert (s_received > 0);
    assert (streq (s_last, line));
    zloop_destroy (&loop);
    herd_bus_destroy (&a);
    herd_bus_destroy (&b);
    herd_config_destroy (&config);
    printf ("OK\n");
}
