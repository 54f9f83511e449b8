//  places/herd_places_asker.c: a loop's DEALER to its places broker.

#include "places/herd_places_layer.h"

struct _herd_places_asker_t {
    zsock_t *broker;            //  DEALER to the broker
    herd_reader_t *reader;      //  Its answers, in the loop
    herd_places_answer_fn *on_answer;
    void *answer_arg;
    herd_places_answer_fn *on_counts;
    void *counts_arg;
    uint64_t malformed;         //  Messages from the broker that did not decode:
                                //  for the log, which says 1 in 1000 (a bug)
    herd_offline_t *offline;    //  Answered here, if set (borrowed)
    zchunk_t *answer;           //  The last answer made here (owned)
    uint64_t answered;          //  Queries answered here
};

static int
s_handle_broker (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_places_asker_t *self = (herd_places_asker_t *) arg;
    zframe_t *frame = NULL;
    herd_places_msg_t message;
    herd_places_msg_kind_t kind = herd_places_msg_recv (reader, NULL, &frame, &message);
    if (kind == HERD_PLACES_MSG_ANSWER && self->on_answer)
        self->on_answer (message.id, message.text, message.text_size, self->answer_arg);
    else
    if (kind == HERD_PLACES_MSG_COUNTS && self->on_counts)
        self->on_counts (message.id, message.text, message.text_size, self->counts_arg);
    else
    if (frame && self->malformed++ % 1000 == 0)
        //  The broker is ours: this is a bug, said once in a thousand
        zsys_error ("places: the broker sent a message that does not decode (%s)",
                    kind == HERD_PLACES_MSG_INVALID? message.reason: "unexpected kind");
    zframe_destroy (&frame);
    return 0;
}

herd_places_asker_t *
herd_places_asker_new (zloop_t *loop, const char *server, size_t max_waiting)
{
    assert (loop && server);
    herd_places_asker_t *self = (herd_places_asker_t *) zmalloc (sizeof (herd_places_asker_t));
    char *endpoint = herd_places_endpoint (server);
    self->broker = zsock_new (ZMQ_DEALER);
    assert (self->broker);
    //  A full queue fails a send at once, never blocks the loop
    zsock_set_sndtimeo (self->broker, 0);
    zsock_set_rcvtimeo (self->broker, HERD_LOOP_RCVTIMEO);
    zsock_set_sndhwm (self->broker, (int) max_waiting);
    zsock_set_rcvhwm (self->broker, (int) max_waiting);
    zsock_set_linger (self->broker, 0);
    int rc = zsock_connect (self->broker, "%s", endpoint);
    assert (rc == 0);
    freen (endpoint);
    self->reader = herd_reader_new (loop, self->broker, s_handle_broker, self);
    return self;
}

void
herd_places_asker_destroy (herd_places_asker_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_places_asker_t *self = *self_p;
        herd_reader_destroy (&self->reader);
        zsock_destroy (&self->broker);
        zchunk_destroy (&self->answer);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_places_asker_on_answer (herd_places_asker_t *self, herd_places_answer_fn *handler, void *arg)
{
    assert (self);
    self->on_answer = handler;
    self->answer_arg = arg;
}

void
herd_places_asker_on_counts (herd_places_asker_t *self, herd_places_answer_fn *handler, void *arg)
{
    assert (self);
    self->on_counts = handler;
    self->counts_arg = arg;
}

static int
s_send (herd_places_asker_t *self, const herd_places_msg_t *message)
{
    int rc = herd_places_msg_send (self->broker, NULL, message);
    herd_reader_check (self->reader);
    return rc;
}

void
herd_places_asker_answer_from (herd_places_asker_t *self, herd_offline_t *offline)
{
    assert (self);
    self->offline = offline;
    if (!self->answer)
        self->answer = zchunk_new (NULL, 0);
}

const char *
herd_places_asker_answer_now (herd_places_asker_t *self, const herd_query_t *query, size_t *size_p)
{
    assert (self && query && size_p);
    if (!self->offline)
        return NULL;
    self->answered++;
    *size_p = herd_offline_answer (self->offline, query, self->answer);
    return (const char *) zchunk_data (self->answer);
}

void
herd_places_asker_stats (herd_places_asker_t *self, json_t *stats)
{
    assert (self && stats);
    herd_counters_put (stats, HERD_COUNTER_PLACES_REQUESTS,
                       self->answered + (uint64_t) herd_counters_value (stats, HERD_COUNTER_PLACES_REQUESTS, NULL));
}

int
herd_places_asker_query (herd_places_asker_t *self, uint64_t request, const herd_query_t *query)
{
    assert (self && query);
    herd_places_msg_t message = { .kind = HERD_PLACES_MSG_QUERY, .id = request, .query = *query };
    return s_send (self, &message);
}

int
herd_places_asker_ask_stats (herd_places_asker_t *self, uint64_t request)
{
    assert (self);
    herd_places_msg_t message = { .kind = HERD_PLACES_MSG_STATS, .id = request };
    return s_send (self, &message);
}

//  --------------------------------------------------------------------------
//  Selftest: a client against a stand-in broker, in a loop

static uint64_t s_answered = 0;
static char s_text [256];

static void
s_test_answer (uint64_t request, const char *text, size_t size, void *arg)
{
    s_answered = request;
    snprintf (s_text, sizeof s_text, "%s%.*s", (const char *) arg, (int) size, text);
}

void
herd_places_asker_test (bool verbose)
{
    printf (" * herd_places_asker: ");
    if (verbose)
        printf ("\n");
    char *endpoint = herd_places_endpoint ("places-client-test");
    zsock_t *broker = zsock_new_router (endpoint);
    freen (endpoint);
    assert (broker);
    zloop_t *loop = zloop_new ();
    herd_places_asker_t *client = herd_places_asker_new (loop, "places-client-test", 10);
    herd_places_asker_on_answer (client, s_test_answer, "answer ");
    herd_places_asker_on_counts (client, s_test_answer, "counts ");
    //  A query reaches the broker as the codec says, and its answer comes
    //  back under the asker's request id
    herd_query_t query = { 1.5, -2.5, 1000, 3 };
    assert (herd_places_asker_query (client, 41, &query) == 0);
    zframe_t *routing = NULL, *frame = NULL;
    herd_places_msg_t message;
    assert (herd_places_msg_recv (broker, &routing, &frame, &message) == HERD_PLACES_MSG_QUERY);
    assert (message.id == 41 && message.query.latitude == 1.5 && message.query.longitude == -2.5);
    assert (message.query.radius_m == 1000 && message.query.max_results == 3);
    zframe_destroy (&frame);
    herd_places_msg_t answer = { .kind = HERD_PLACES_MSG_ANSWER, .id = 41, .text = "{}", .text_size = 2 };
    assert (herd_places_msg_send (broker, routing, &answer) == 0);
    for (int round = 0; round < 100 && !s_answered; round++)
        herd_loop_run_for (loop, 10);
    assert (s_answered == 41 && streq (s_text, "answer {}"));
    //  Counters go to their own handler
    assert (herd_places_asker_ask_stats (client, 43) == 0);
    zframe_t *routing_again = NULL;
    assert (herd_places_msg_recv (broker, &routing_again, &frame, &message) == HERD_PLACES_MSG_STATS);
    assert (message.id == 43);
    zframe_destroy (&frame);
    herd_places_msg_t counts = { .kind = HERD_PLACES_MSG_COUNTS, .id = 43,
                                 .text = "{\"requests\":1}", .text_size = 14 };
    assert (herd_places_msg_send (broker, routing_again, &counts) == 0);
    for (int round = 0; round < 100 && s_answered != 43; round++)
        herd_loop_run_for (loop, 10);
    assert (s_answered == 43 && streq (s_text, "counts {\"requests\":1}"));
    zframe_destroy (&routing_again);
    zframe_destroy (&routing);
    herd_places_asker_destroy (&client);
    assert (client == NULL);
    zloop_destroy (&loop);
    zsock_destroy (&broker);
    printf ("OK\n");
}
