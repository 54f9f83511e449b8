//  core/herd_actor.c: the start handshake of herd's actors.

#include "core/herd_core_layer.h"

int
herd_actor_start (zactor_t *actor, char **error_p)
{
    assert (actor && error_p);
    zstr_send (actor, "START");
    //  Signals wait, blocked, until main takes them: nothing interrupts this
    char *reply = zstr_recv (actor);
    int rc = reply && streq (reply, "OK")? 0: -1;
    if (rc)
        *error_p = strdup (reply && strlen (reply) > 6? reply + 6: "no answer to START");
    freen (reply);
    return rc;
}

void
herd_actor_name (const char *name)
{
    assert (name && strlen (name) <= 15);
    pthread_setname_np (pthread_self (), name);
}

void
herd_actor_started (zsock_t *pipe, int started, const char *reason)
{
    assert (pipe);
    if (started == 0)
        zstr_send (pipe, "OK");
    else
        zstr_sendf (pipe, "ERROR %s", reason? reason: "unknown");
}

//  --------------------------------------------------------------------------
//  Selftest: an actor that starts once, and fails the next time

static void
s_test_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    int starts = 0;
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM")) {
            freen (command);
            break;
        }
        assert (streq (command, "START"));
        herd_actor_started (pipe, starts++? -1: 0, "cannot bind the test to nowhere");
        freen (command);
    }
}

void
herd_actor_test (bool verbose)
{
    printf (" * herd_actor: ");
    if (verbose)
        printf ("\n");
    zactor_t *actor = zactor_new (s_test_actor, NULL);
    char *error = NULL;
    assert (herd_actor_start (actor, &error) == 0 && !error);
    assert (herd_actor_start (actor, &error) == -1);
    assert (streq (error, "cannot bind the test to nowhere"));
    freen (error);
    zactor_destroy (&actor);
    //  A thread's name, as ps -L shows it
    char before [16], after [16];
    pthread_getname_np (pthread_self (), before, sizeof before);
    herd_actor_name ("herd-test");
    pthread_getname_np (pthread_self (), after, sizeof after);
    assert (streq (after, "herd-test"));
    pthread_setname_np (pthread_self (), before);
    printf ("OK\n");
}
