//  core/herd_admin.c: a client of a server's admin endpoint.

#include "core/herd_core_layer.h"

struct _herd_admin_t {
    zsock_t *dealer;
    char *endpoint;
    char *server;               //  Whose key to expect, or NULL (no keys)
    herd_keys_t *keys;          //  Borrowed, or NULL
};

static int
s_connect (herd_admin_t *self, char **error_p)
{
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->dealer);
    if (self->keys && herd_keys_apply_client (self->keys, self->dealer, self->server, error_p)) {
        zsock_destroy (&self->dealer);
        return -1;
    }
    zsock_set_sndtimeo (self->dealer, 0);
    zsock_set_linger (self->dealer, 0);
    zsock_connect (self->dealer, "%s", self->endpoint);
    return 0;
}

static herd_admin_t *
s_new (const char *endpoint, herd_keys_t *keys, const char *server, char **error_p)
{
    herd_admin_t *self = (herd_admin_t *) zmalloc (sizeof (herd_admin_t));
    self->endpoint = strdup (endpoint);
    self->keys = keys;
    self->server = server? strdup (server): NULL;
    if (s_connect (self, error_p))
        herd_admin_destroy (&self);
    return self;
}

herd_admin_t *
herd_admin_new (herd_config_t *config, herd_keys_t *keys, const char *server, char **error_p)
{
    assert (config && keys && server && error_p);
    const char *endpoint = herd_config_server_endpoint (config, server, "admin");
    if (!endpoint) {
        *error_p = zsys_sprintf ("server %s has no admin endpoint in %s (servers/%s/admin)", server,
                                 herd_config_filename (config), server);
        return NULL;
    }
    return s_new (endpoint, keys, server, error_p);
}

herd_admin_t *
herd_admin_new_endpoint (const char *endpoint)
{
    assert (endpoint);
    char *error = NULL;
    herd_admin_t *self = s_new (endpoint, NULL, NULL, &error);
    assert (self);              //  Without keys nothing can fail
    return self;
}

void
herd_admin_destroy (herd_admin_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_admin_t *self = *self_p;
        zsock_destroy (&self->dealer);
        freen (self->endpoint);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_admin_send (herd_admin_t *self, const char *request)
{
    assert (self && request);
    return self->dealer? zstr_send (self->dealer, request): -1;
}

json_t *
herd_admin_recv (herd_admin_t *self, int msecs)
{
    assert (self);
    if (!self->dealer)
        return NULL;
    zmq_pollitem_t item = { zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, msecs) <= 0)
        return NULL;
    char *reply = zstr_recv (self->dealer);
    json_t *json = reply? json_loads (reply, 0, NULL): NULL;
    freen (reply);
    return json;
}

json_t *
herd_admin_ask (herd_admin_t *self, const char *request, int msecs)
{
    assert (self && request);
    json_t *answer = NULL;
    if (herd_admin_send (self, request) == 0)
        answer = herd_admin_recv (self, msecs);
    if (!answer)
        herd_admin_reset (self);
    return answer;
}

void
herd_admin_reset (herd_admin_t *self)
{
    assert (self);
    zsock_destroy (&self->dealer);
    char *error = NULL;
    if (s_connect (self, &error))
        freen (error);          //  The key went since: the next ask fails
}

zsock_t *
herd_admin_sock (herd_admin_t *self)
{
    assert (self);
    return self->dealer;
}

const char *
herd_admin_endpoint (herd_admin_t *self)
{
    assert (self);
    return self->endpoint;
}

//  --------------------------------------------------------------------------
//  Selftest: an admin endpoint stand-in that answers once, then not

void
herd_admin_test (bool verbose)
{
    printf (" * herd_admin: ");
    if (verbose)
        printf ("\n");
    zsock_t *endpoint = zsock_new_router ("inproc://herd-admin-test");
    assert (endpoint);
    herd_admin_t *admin = herd_admin_new_endpoint ("inproc://herd-admin-test");
    assert (streq (herd_admin_endpoint (admin), "inproc://herd-admin-test"));
    //  Asked, answered
    assert (herd_admin_send (admin, "STATE") == 0);
    zmsg_t *request = zmsg_recv (endpoint);
    assert (request && zmsg_size (request) == 2);
    zframe_t *identity = zmsg_pop (request);
    char *text = zmsg_popstr (request);
    assert (streq (text, "STATE"));
    freen (text);
    zmsg_destroy (&request);
    zframe_send (&identity, endpoint, ZFRAME_MORE | ZFRAME_REUSE);
    zstr_send (endpoint, "{\"server\": \"A\"}");
    json_t *answer = herd_admin_recv (admin, 1000);
    assert (answer && streq (json_string_value (json_object_get (answer, "server")), "A"));
    json_decref (answer);
    //  Not answered in time: NULL, and the late answer is never taken for
    //  the next one
    assert (herd_admin_ask (admin, "STATS", 50) == NULL);
    request = zmsg_recv (endpoint);
    zmsg_destroy (&request);
    zframe_send (&identity, endpoint, ZFRAME_MORE | ZFRAME_REUSE);
    zstr_send (endpoint, "{\"late\": true}");
    assert (herd_admin_recv (admin, 100) == NULL);
    zframe_destroy (&identity);
    herd_admin_destroy (&admin);
    assert (admin == NULL);
    zsock_destroy (&endpoint);
    printf ("OK\n");
}
