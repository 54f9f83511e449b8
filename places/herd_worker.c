//  places/herd_worker.c: a places worker actor.

#include "places/herd_places_layer.h"

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *broker;            //  DEALER to the broker
    herd_google_t *google;      //  Google provider, if that is ours
} s_worker_t;

//  Runs one query with our provider. Caller owns the response.
static json_t *
s_search (s_worker_t *self, const herd_query_t *query)
{
    if (self->google)
        return herd_google_search (self->google, query);
    return herd_nearby_error ("no places provider is configured: set the Google API key "
                              "in the environment variable named by places/google/key_env");
}

//  Answers one job: the response itself goes to the broker, whole
static void
s_answer_job (s_worker_t *self, const herd_places_msg_t *job)
{
    json_t *response = s_search (self, &job->query);
    herd_places_msg_t result = { .kind = HERD_PLACES_MSG_RESULT, .id = job->id, .response = response };
    if (herd_places_msg_send (self->broker, NULL, &result) == -1)
        json_decref (response);         //  The broker is going away
}

void
herd_worker_actor (zsock_t *pipe, void *args)
{
    herd_worker_settings_t *settings = (herd_worker_settings_t *) args;
    herd_actor_name ("herd-google");
    s_worker_t self = { pipe, zsock_new (ZMQ_DEALER), NULL };
    assert (self.broker);
    //  A result sent as we stop stays in the pipe until the broker has
    //  read it: it carries a response only the broker can free
    zsock_set_linger (self.broker, 1000);
    int rc = zsock_connect (self.broker, "%s", settings->endpoint);
    assert (rc == 0);
    if (streq (settings->provider, "google"))
        self.google = herd_google_new (settings->google_api, settings->google_url,
                                       settings->google_key, settings->timeout_ms, settings->google_fields);
    zsock_signal (pipe, 0);         //  settings may go away now
    herd_places_msg_t ready = { .kind = HERD_PLACES_MSG_READY, .id = 0 };
    herd_places_msg_send (self.broker, NULL, &ready);

    zpoller_t *poller = zpoller_new (pipe, self.broker, NULL);
    //  Signals stop the process through main, which sends us $TERM
    zpoller_set_nonstop (poller, true);
    while (true) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool terminate = !command || streq (command, "$TERM");
            if (!terminate)
                zsys_error ("places worker: unknown command %s", command);
            freen (command);
            if (terminate)
                break;
        }
        else
        if (which == self.broker) {
            zframe_t *frame = NULL;
            herd_places_msg_t job;
            //  The broker is ours; anything but a query is a bug
            if (herd_places_msg_recv (self.broker, NULL, &frame, &job) == HERD_PLACES_MSG_QUERY)
                s_answer_job (&self, &job);
            else
                zsys_error ("places worker: the broker sent no query (%s)", job.reason);
            zframe_destroy (&frame);
        }
    }
    zpoller_destroy (&poller);
    herd_google_destroy (&self.google);
    zsock_destroy (&self.broker);
}

//  --------------------------------------------------------------------------
//  Selftest: a worker with no provider answers UNKNOWN_ERROR

void
herd_worker_test (bool verbose)
{
    printf (" * herd_worker: ");
    if (verbose)
        printf ("\n");
    zsock_t *broker = zsock_new_router ("inproc://herd-worker-test");
    assert (broker);
    herd_worker_settings_t settings = { "inproc://herd-worker-test", "none", "new", "", "", 1000,
                                        HERD_GOOGLE_FIELDS_DEFAULT };
    zactor_t *worker = zactor_new (herd_worker_actor, &settings);
    assert (worker);
    zframe_t *identity = NULL, *frame = NULL;
    herd_places_msg_t message;
    assert (herd_places_msg_recv (broker, &identity, &frame, &message) == HERD_PLACES_MSG_READY);
    zframe_destroy (&frame);
    herd_places_msg_t job = { .kind = HERD_PLACES_MSG_QUERY, .id = 42, .query = { 1, 2, 1000, 5 } };
    assert (herd_places_msg_send (broker, identity, &job) == 0);
    zframe_destroy (&identity);
    assert (herd_places_msg_recv (broker, &identity, &frame, &message) == HERD_PLACES_MSG_RESULT);
    assert (message.id == 42);
    assert (streq (herd_nearby_status (message.response), "UNKNOWN_ERROR"));
    assert (strstr (json_string_value (json_object_get (message.response, "error_message")),
                    "no places provider is configured"));
    json_decref (message.response);
    zframe_destroy (&frame);
    zframe_destroy (&identity);
    zactor_destroy (&worker);
    zsock_destroy (&broker);
    printf ("OK\n");
}
