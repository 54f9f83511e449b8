//  core/herd_keys.c: CURVE certificates and their use on sockets.

#include "core/herd_core_layer.h"

struct _herd_keys_t {
    bool secure;                //  herd/security = on
    char *folder;               //  herd/keys
    char *allowed;              //  folder/public
    zcert_t *cert;              //  Our certificate, secret part included
    zlistx_t *watches;          //  s_watch_t, one per watched socket (owned)
    herd_ratelimit_t *log;      //  Handshake lines, limited per socket domain (owned)
};

//  A server socket whose handshakes we count
typedef struct {
    herd_keys_t *keys;          //  Parent, not owned
    char *domain;               //  bus, feed, sync or admin
    zsock_t *sock;              //  Watched, borrowed; NULL once unwatched
    zactor_t *monitor;          //  zmonitor on the socket
    herd_reader_t *reader;      //  Reads monitor in the loop
    uint64_t refused;           //  Handshakes refused
    herd_keys_connection_fn *connections;   //  Told of connections, or NULL
    void *connections_arg;
} s_watch_t;

static void
s_watch_destroy (void **item_p)
{
    s_watch_t *watch = (s_watch_t *) *item_p;
    if (watch) {
        herd_reader_destroy (&watch->reader);
        zactor_destroy (&watch->monitor);
        freen (watch->domain);
        freen (watch);
        *item_p = NULL;
    }
}

//  Where name's public and secret certificates live. Caller frees.
static char *
s_public_path (const char *folder, const char *name)
{
    return zsys_sprintf ("%s/public/%s.key", folder, name);
}

static char *
s_secret_path (const char *folder, const char *name)
{
    return zsys_sprintf ("%s/secret/%s.key_secret", folder, name);
}

zcert_t *
herd_keys_load (const char *path)
{
    assert (path);
    if (!zsys_file_exists (path))
        return NULL;
    //  zcert_load reads "<name>_secret" for the secret part: give it a
    //  secret file's own name without that suffix
    char *base = strdup (path);
    size_t size = strlen (base), suffix = strlen ("_secret");
    if (size > suffix && streq (base + size - suffix, "_secret"))
        base [size - suffix] = 0;
    zcert_t *cert = zcert_load (base);
    freen (base);
    return cert;
}

herd_keys_t *
herd_keys_new (herd_config_t *config, const char *name, char **error_p)
{
    assert (config && name && error_p);
    herd_keys_t *self = (herd_keys_t *) zmalloc (sizeof (herd_keys_t));
    self->secure = streq (herd_config_string (config, "herd/security"), "on");
    self->folder = strdup (herd_config_string (config, "herd/keys"));
    self->allowed = zsys_sprintf ("%s/public", self->folder);
    self->watches = zlistx_new ();
    zlistx_set_destructor (self->watches, s_watch_destroy);
    self->log = herd_ratelimit_new (HERD_LOG_INTERVAL, HERD_LOG_BURST, HERD_LOG_SOURCES_MAX);
    if (self->secure) {
        char *path = s_secret_path (self->folder, name);
        //  As ssh does with a private key: one that group or others may
        //  read is no secret any more, and is not used
        struct stat status;
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        int error = fd == -1? errno: 0;
        if (fd != -1 && fstat (fd, &status) == 0 && (status.st_mode & 077))
            *error_p = zsys_sprintf ("%s: mode %04o lets others read this secret key; it is not used. "
                                     "Fix it with: chmod 600 %s", path, (unsigned) (status.st_mode & 07777), path);
        else
        if (fd == -1 && error == ENOENT)
            *error_p = zsys_sprintf ("%s: no such key file; make it with: herd --config %s --keygen %s",
                                     path, herd_config_filename (config), name);
        else
        if (fd == -1)
            *error_p = zsys_sprintf ("%s: cannot read it: %s (it must be readable by the user herd runs as, "
                                     "and by nobody else)", path, strerror (error));
        else {
            self->cert = herd_keys_load (path);
            if (!self->cert || !*zcert_secret_txt (self->cert)
            ||  streq (zcert_secret_txt (self->cert), "0000000000000000000000000000000000000000")) {
                *error_p = zsys_sprintf ("%s: not a secret certificate; make a new one with: "
                                         "herd --config %s --keygen %s (after moving this file away)",
                                         path, herd_config_filename (config), name);
                zcert_destroy (&self->cert);
            }
        }
        if (fd != -1)
            close (fd);
        freen (path);
        if (!self->cert) {
            herd_keys_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
herd_keys_destroy (herd_keys_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_keys_t *self = *self_p;
        zlistx_destroy (&self->watches);
        herd_ratelimit_destroy (&self->log);
        zcert_destroy (&self->cert);
        freen (self->allowed);
        freen (self->folder);
        freen (self);
        *self_p = NULL;
    }
}

bool
herd_keys_secure (herd_keys_t *self)
{
    assert (self);
    return self->secure;
}

const char *
herd_keys_allowed (herd_keys_t *self)
{
    assert (self);
    return self->allowed;
}

void
herd_keys_apply_server (herd_keys_t *self, zsock_t *sock, const char *domain)
{
    assert (self && sock && domain);
    if (!self->secure)
        return;
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, domain);
}

int
herd_keys_apply_client (herd_keys_t *self, zsock_t *sock, const char *server, char **error_p)
{
    assert (self && sock && server && error_p);
    if (!self->secure)
        return 0;
    char *path = s_public_path (self->folder, server);
    zcert_t *expected = herd_keys_load (path);
    if (!expected) {
        *error_p = zsys_sprintf ("%s: no public certificate of %s; copy it from where %s's keys were made",
                                 path, server, server);
        freen (path);
        return -1;
    }
    freen (path);
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (expected));
    zcert_destroy (&expected);
    return 0;
}

//  A handshake event: [event][value][endpoint]
static int
s_handle_handshake (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_watch_t *watch = (s_watch_t *) arg;
    zmsg_t *msg = zmsg_recv (reader);
    char *event = msg? zmsg_popstr (msg): NULL;
    char *value = msg? zmsg_popstr (msg): NULL;
    char *endpoint = msg? zmsg_popstr (msg): NULL;
    bool accepted = event && streq (event, "ACCEPTED");
    if (accepted || (event && streq (event, "DISCONNECTED"))) {
        if (watch->connections && value)
            watch->connections (atoi (value), accepted, watch->connections_arg);
    }
    else
    if (event && streq (event, "HANDSHAKE_FAILED_NO_DETAIL")) {
        //  It ended before a key was judged: a tool that quit mid-way (a
        //  timeout), a scanner, or a peer that speaks no CURVE. Counted
        //  with the refusals, but no attack is claimed.
        watch->refused++;
        herd_ratelimit_log (watch->keys->log, watch->domain, LOG_INFO,
                            "security: a handshake on %s (%s) did not finish: the other end left, "
                            "or spoke no CURVE (HANDSHAKE_FAILED_NO_DETAIL)", watch->domain,
                            endpoint? endpoint: "?");
    }
    else
    if (event && strneq (event, "HANDSHAKE_SUCCEEDED")) {
        watch->refused++;
        const char *reason = streq (event, "HANDSHAKE_FAILED_AUTH")? "its key is not allowed"
                                                                   : "not CURVE, or not our key";
        herd_ratelimit_log (watch->keys->log, watch->domain, LOG_WARNING,
                            "security: refused a handshake on %s (%s): %s (%s)", watch->domain,
                            endpoint? endpoint: "?", reason, event);
    }
    freen (event);
    freen (value);
    freen (endpoint);
    zmsg_destroy (&msg);
    return 0;
}

void
herd_keys_watch (herd_keys_t *self, zloop_t *loop, zsock_t *sock, const char *domain,
                 herd_keys_connection_fn *connections, void *arg)
{
    assert (self && loop && sock && domain);
    if (!self->secure && !connections)
        return;
    //  A socket made anew in a domain goes on with the old one's count
    s_watch_t *watch = (s_watch_t *) zlistx_first (self->watches);
    while (watch && (watch->sock || strneq (watch->domain, domain)))
        watch = (s_watch_t *) zlistx_next (self->watches);
    if (!watch) {
        watch = (s_watch_t *) zmalloc (sizeof (s_watch_t));
        watch->keys = self;
        watch->domain = strdup (domain);
        zlistx_add_end (self->watches, watch);
    }
    watch->sock = sock;
    watch->connections = connections;
    watch->connections_arg = arg;
    watch->monitor = zactor_new (zmonitor, sock);
    if (!watch->monitor) {
        zsys_warning ("security: cannot count %s handshakes (interrupted)", domain);
        watch->sock = NULL;
        return;
    }
    zstr_sendx (watch->monitor, "LISTEN", "HANDSHAKE_FAILED_AUTH", "HANDSHAKE_FAILED_PROTOCOL",
                "HANDSHAKE_FAILED_NO_DETAIL", NULL);
    if (connections)
        zstr_sendx (watch->monitor, "LISTEN", "ACCEPTED", "DISCONNECTED", NULL);
    zstr_send (watch->monitor, "START");
    zsock_wait (watch->monitor);
    watch->reader = herd_reader_new (loop, watch->monitor, s_handle_handshake, watch);
}

void
herd_keys_unwatch (herd_keys_t *self, zsock_t *sock)
{
    assert (self && sock);
    for (s_watch_t *watch = (s_watch_t *) zlistx_first (self->watches); watch;
         watch = (s_watch_t *) zlistx_next (self->watches))
        if (watch->sock == sock) {
            herd_reader_retire (&watch->reader);
            zactor_destroy (&watch->monitor);
            watch->sock = NULL;
            watch->connections = NULL;
        }
}

void
herd_keys_stats (herd_keys_t *self, json_t *stats)
{
    assert (self && stats);
    //  One domain may be watched on several sockets: summed
    json_t *refusals = json_object ();
    for (s_watch_t *watch = (s_watch_t *) zlistx_first (self->watches); watch;
         watch = (s_watch_t *) zlistx_next (self->watches)) {
        json_t *count = json_object_get (refusals, watch->domain);
        json_object_set_new (refusals, watch->domain,
                             json_integer (json_integer_value (count) + (json_int_t) watch->refused));
    }
    herd_counters_put_json (stats, HERD_COUNTER_HANDSHAKES_REFUSED, refusals);
}

int
herd_keys_generate (herd_config_t *config, const char *name, char **error_p)
{
    assert (config && name && error_p);
    const char *folder = herd_config_string (config, "herd/keys");
    char *public_path = s_public_path (folder, name);
    char *secret_path = s_secret_path (folder, name);
    int rc = 0;
    if (zsys_file_exists (secret_path) && zsys_file_exists (public_path))
        rc = 0;                     //  Never overwrite a key in use
    else {
        herd_file_create_folder (public_path);
        herd_file_create_folder (secret_path);
        //  Only its owner may list or read the secret folder
        char *secret_folder = zsys_sprintf ("%s/secret", folder);
        chmod (secret_folder, 0700);
        freen (secret_folder);
        zcert_t *cert = zcert_new ();
        zcert_set_meta (cert, "name", "%s", name);
        //  zcert_save_secret writes with the process umask: make it 0600
        //  from the start, not after
        mode_t saved = umask (0077);
        int saved_secret = zcert_save_secret (cert, secret_path);
        umask (saved);
        if (saved_secret || zcert_save_public (cert, public_path)) {
            *error_p = zsys_sprintf ("cannot write keys for %s under %s: %s", name, folder, strerror (errno));
            rc = -1;
        }
        else {
            chmod (secret_path, 0600);
            rc = 1;
        }
        zcert_destroy (&cert);
    }
    freen (public_path);
    freen (secret_path);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: keys made, loaded, refused when missing, used on a link

void
herd_keys_test (bool verbose)
{
    printf (" * herd_keys: ");
    if (verbose)
        printf ("\n");
    char *folder = zsys_sprintf ("/tmp/herd-keys-test-%d", getpid ());
    char *text = zsys_sprintf ("herd\n    keys = %s\nservers\n    A\n        client = 127.0.0.1:1\n"
                               "        bus = inproc://herd-keys-test\n", folder);
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "keys-test", &error);
    assert (config);
    //  Missing: one line that says which file and how to make it
    herd_keys_t *keys = herd_keys_new (config, "A", &error);
    assert (!keys && strstr (error, "secret/A.key_secret: no such key file; make it with: herd"));
    freen (error);
    assert (herd_keys_generate (config, "A", &error) == 1);
    assert (herd_keys_generate (config, "A", &error) == 0);     //  Kept, not replaced
    assert (herd_keys_generate (config, "M", &error) == 1);
    char *secret = zsys_sprintf ("%s/secret/A.key_secret", folder);
    struct stat status;
    assert (stat (secret, &status) == 0 && (status.st_mode & 0777) == 0600);
    //  Either file of a pair loads; the secret one holds both keys
    zcert_t *both = herd_keys_load (secret);
    char *public_path = zsys_sprintf ("%s/public/A.key", folder);
    zcert_t *public_only = herd_keys_load (public_path);
    assert (both && public_only && *zcert_secret_txt (both));
    assert (streq (zcert_public_txt (both), zcert_public_txt (public_only)));
    zcert_destroy (&both);
    zcert_destroy (&public_only);
    freen (public_path);
    assert (herd_keys_load ("/nonexistent/A.key_secret") == NULL);
    keys = herd_keys_new (config, "A", &error);
    assert (keys && herd_keys_secure (keys));
    herd_keys_t *monitor = herd_keys_new (config, "M", &error);
    assert (monitor);

    //  A CURVE link: A serves, M connects expecting A's key (no ZAP
    //  handler here: the handshake alone is what this checks)
    zsock_t *server = zsock_new (ZMQ_PULL);
    herd_keys_apply_server (keys, server, "test");
    int port = zsock_bind (server, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_t *client = zsock_new (ZMQ_PUSH);
    assert (herd_keys_apply_client (monitor, client, "A", &error) == 0);
    zsock_connect (client, "tcp://127.0.0.1:%d", port);
    zstr_send (client, "hello");
    zsock_set_rcvtimeo (server, 2000);
    char *message = zstr_recv (server);
    assert (message && streq (message, "hello"));
    freen (message);
    //  Expecting a server whose key we lack: refused before connecting
    zsock_t *lost = zsock_new (ZMQ_PUSH);
    assert (herd_keys_apply_client (monitor, lost, "Nobody", &error) == -1);
    assert (strstr (error, "public/Nobody.key"));
    freen (error);
    zsock_destroy (&lost);
    zsock_destroy (&client);
    zsock_destroy (&server);
    herd_keys_destroy (&monitor);
    herd_keys_destroy (&keys);
    assert (keys == NULL);
    //  A secret others may read is refused, saying how to fix it
    assert (chmod (secret, 0644) == 0);
    keys = herd_keys_new (config, "A", &error);
    assert (!keys && strstr (error, "mode 0644 lets others read this secret key") && strstr (error, "chmod 600"));
    freen (error);
    //  A corrupt secret file is refused in one line too
    FILE *file = fopen (secret, "w");
    fprintf (file, "metadata\n    name = \"A\"\n");      //  ZPL, but no keys
    fclose (file);
    assert (chmod (secret, 0600) == 0);
    keys = herd_keys_new (config, "A", &error);
    assert (!keys && strstr (error, "not a secret certificate"));
    freen (error);
    herd_config_destroy (&config);
    char *command = zsys_sprintf ("rm -rf %s", folder);
    assert (system (command) == 0);
    freen (command);
    freen (secret);
    freen (text);
    freen (folder);
    printf ("OK\n");
}
