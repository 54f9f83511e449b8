//  places/herd_worker.c: a places worker actor.

#include "herd_classes.h"

typedef struct {
    zsock_t *pipe;              //  Actor command pipe
    zsock_t *broker;            //  DEALER to the broker
    herd_google_t *google;      //  Google provider, if that is ours
    herd_offline_t *offline;    //  Offline provider, if that is ours (borrowed)
} s_worker_t;

//  Runs one query with our provider. Caller owns the response.
static json_t *
s_search (s_worker_t *self, const herd_query_t *query)
{
    if (self->google)
        return herd_google_search (self->google, query);
    if (self->offline)
        return herd_offline_search (self->offline, query);
    return herd_nearby_error ("no places provider is configured: set the Google API key "
                              "in the environment variable named by places/google/key_env");
}

static void
s_answer_job (s_worker_t *self, zmsg_t *job)
{
    zframe_t *job_id = zmsg_first (job);
    zframe_t *query_frame = zmsg_next (job);
    //  The broker is ours; a malformed job is a bug
    assert (job_id && zframe_size (job_id) == sizeof (uint64_t));
    assert (query_frame && zframe_size (query_frame) == sizeof (herd_query_t));
    herd_query_t query;
    memcpy (&query, zframe_data (query_frame), sizeof query);
    json_t *response = s_search (self, &query);
    char *text = json_dumps (response, JSON_COMPACT);
    json_decref (response);
    zsock_send (self->broker, "fs", job_id, text);
    freen (text);
}

void
herd_worker_actor (zsock_t *pipe, void *args)
{
    herd_worker_settings_t *settings = (herd_worker_settings_t *) args;
    s_worker_t self = { pipe, zsock_new (ZMQ_DEALER), NULL, NULL };
    assert (self.broker);
    zsock_set_linger (self.broker, 0);
    int rc = zsock_connect (self.broker, "%s", settings->endpoint);
    assert (rc == 0);
    if (streq (settings->provider, "google"))
        self.google = herd_google_new (settings->google_api, settings->google_url,
                                       settings->google_key, settings->timeout_ms, settings->google_fields);
    if (streq (settings->provider, "offline"))
        self.offline = settings->offline;
    zsock_signal (pipe, 0);         //  settings may go away now
    zstr_send (self.broker, "READY");

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
            zmsg_t *job = zmsg_recv (self.broker);
            if (job)
                s_answer_job (&self, job);
            zmsg_destroy (&job);
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
    herd_worker_settings_t settings = { "inproc://herd-worker-test", "none", NULL, "new", "", "", 1000,
                                        HERD_GOOGLE_FIELDS_DEFAULT };
    zactor_t *worker = zactor_new (herd_worker_actor, &settings);
    assert (worker);
    char *ready = NULL;
    zframe_t *identity = NULL;
    assert (zsock_recv (broker, "fs", &identity, &ready) == 0);
    assert (streq (ready, "READY"));
    freen (ready);
    herd_query_t query = { 1, 2, 1000, 5 };
    uint64_t job_id = 42;
    zsock_send (broker, "fbb", identity, &job_id, sizeof job_id, &query, sizeof query);
    zframe_t *reply_id = NULL;
    char *text = NULL;
    zframe_destroy (&identity);
    assert (zsock_recv (broker, "ffs", &identity, &reply_id, &text) == 0);
    assert (zframe_size (reply_id) == sizeof job_id);
    assert (memcmp (zframe_data (reply_id), &job_id, sizeof job_id) == 0);
    assert (strstr (text, "UNKNOWN_ERROR"));
    assert (strstr (text, "no places provider is configured"));
    freen (text);
    zframe_destroy (&reply_id);
    zframe_destroy (&identity);
    zactor_destroy (&worker);
    zsock_destroy (&broker);
    printf ("OK\n");
}
