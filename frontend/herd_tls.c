//  frontend/herd_tls.c: the TLS client port's context.

#include "frontend/herd_frontend_layer.h"

struct _herd_tls_t {
    herd_config_t *config;      //  Borrowed
    char *server;               //  Our name
    SSL_CTX *context;           //  Sessions start from it (owned)
    bool certs_required;
    char *description;          //  For the log (owned)
};

//  OpenSSL's last error as one line
static char *
s_error (const char *what, const char *path, const char *setting)
{
    unsigned long code = ERR_get_error ();
    ERR_clear_error ();
    char reason [256] = "unknown error";
    if (code)
        ERR_error_string_n (code, reason, sizeof reason);
    return zsys_sprintf ("TLS: %s %s (%s): %s", what, path, setting, reason);
}

//  A context from the files the config names; NULL and *error_p
static SSL_CTX *
s_context_new (herd_tls_t *self, char **description_p, char **error_p)
{
    char *ca = herd_config_tls_file (self->config, self->server, "ca");
    char *cert = herd_config_tls_file (self->config, self->server, "cert");
    char *key_path = herd_config_tls_file (self->config, self->server, "key");
    char *crl = herd_config_tls_file (self->config, self->server, "crl");
    bool crl_named = *herd_config_string (self->config, "tls/crl") != 0;
    bool tls12 = streq (herd_config_string (self->config, "tls/min_version"), "1.2");
    SSL_CTX *context = SSL_CTX_new (TLS_server_method ());
    assert (context);
    SSL_CTX_set_min_proto_version (context, tls12? TLS1_2_VERSION: TLS1_3_VERSION);
    SSL_CTX_set_options (context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET
                                | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets (context, 0);
    SSL_CTX_set_session_cache_mode (context, SSL_SESS_CACHE_OFF);
    //  Partial writes from a buffer that may move between tries (the
    //  connection's output grows); buffers freed while a connection idles
    SSL_CTX_set_mode (context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                             | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify (context, SSL_VERIFY_PEER | (self->certs_required? SSL_VERIFY_FAIL_IF_NO_PEER_CERT: 0),
                        NULL);
    char *error = NULL;
    EVP_PKEY *key = NULL;
    if (SSL_CTX_use_certificate_chain_file (context, cert) != 1)
        error = s_error ("cannot load the server certificate", cert, "tls/cert; herd --keygen makes it");
    else
    if (!(key = herd_ca_read_key (key_path, &error)))
        ;
    else
    if (SSL_CTX_use_PrivateKey (context, key) != 1 || SSL_CTX_check_private_key (context) != 1)
        error = s_error ("the key does not match the certificate", key_path, "tls/key");
    else
    if (SSL_CTX_load_verify_locations (context, ca, NULL) != 1)
        error = s_error ("cannot load the CA certificate", ca, "tls/ca; herd --keygen makes it");
    else {
        STACK_OF (X509_NAME) *names = SSL_load_client_CA_file (ca);
        if (names)
            SSL_CTX_set_client_CA_list (context, names);
    }
    EVP_PKEY_free (key);
    //  The revocation list: the one named, which must be there, else
    //  <keys>/ca.crl if herd --revoke has made it
    bool crl_loaded = false;
    if (!error && (crl_named || zsys_file_exists (crl))) {
        X509_STORE *store = SSL_CTX_get_cert_store (context);
        X509_LOOKUP *lookup = X509_STORE_add_lookup (store, X509_LOOKUP_file ());
        if (!lookup || X509_load_crl_file (lookup, crl, X509_FILETYPE_PEM) < 1)
            error = s_error ("cannot load the revocation list", crl, "tls/crl");
        else {
            X509_STORE_set_flags (store, X509_V_FLAG_CRL_CHECK);
            crl_loaded = true;
        }
    }
    if (error) {
        *error_p = error;
        SSL_CTX_free (context);
        context = NULL;
    }
    else
        *description_p = zsys_sprintf ("TLS %s, client certificates %s (CA %s), %s", tls12? "1.2 and 1.3": "1.3",
                                       self->certs_required? "required": "optional", ca,
                                       crl_loaded? crl: "no revocation list");
    freen (ca);
    freen (cert);
    freen (key_path);
    freen (crl);
    return context;
}

herd_tls_t *
herd_tls_new (herd_config_t *config, const char *server, char **error_p)
{
    assert (config && server && error_p);
    herd_tls_t *self = (herd_tls_t *) zmalloc (sizeof (herd_tls_t));
    self->config = config;
    self->server = strdup (server);
    self->certs_required = streq (herd_config_string (config, "tls/client_certs"), "required");
    self->context = s_context_new (self, &self->description, error_p);
    if (!self->context)
        herd_tls_destroy (&self);
    return self;
}

void
herd_tls_destroy (herd_tls_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_tls_t *self = *self_p;
        SSL_CTX_free (self->context);
        freen (self->description);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_tls_reload (herd_tls_t *self, char **error_p)
{
    assert (self && error_p);
    char *description = NULL;
    SSL_CTX *context = s_context_new (self, &description, error_p);
    if (!context)
        return -1;
    //  Sessions hold their own reference: open connections keep the old
    SSL_CTX_free (self->context);
    self->context = context;
    freen (self->description);
    self->description = description;
    return 0;
}

SSL *
herd_tls_session (herd_tls_t *self, int fd)
{
    assert (self && fd >= 0);
    SSL *session = SSL_new (self->context);
    assert (session);
    SSL_set_fd (session, fd);
    SSL_set_accept_state (session);
    return session;
}

bool
herd_tls_certs_required (herd_tls_t *self)
{
    assert (self);
    return self->certs_required;
}

const char *
herd_tls_describe (herd_tls_t *self)
{
    assert (self);
    return self->description;
}

//  --------------------------------------------------------------------------
//  Selftest: a handshake over a socket pair, with a client certificate,
//  without one, and with one revoked after a reload

//  Runs both sides' handshakes to their end; true if the server's passed
static bool
s_test_handshake (SSL *server, SSL *client)
{
    int server_rc = 0, client_rc = 0;
    for (int round = 0; round < 100 && (server_rc != 1 || client_rc != 1); round++) {
        if (client_rc != 1) {
            client_rc = SSL_do_handshake (client);
            int error = SSL_get_error (client, client_rc);
            if (client_rc != 1 && error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
                client_rc = 1;          //  Done, one way or the other
        }
        if (server_rc != 1) {
            server_rc = SSL_do_handshake (server);
            int error = SSL_get_error (server, server_rc);
            if (server_rc != 1 && error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
                return false;
        }
    }
    ERR_clear_error ();
    return server_rc == 1;
}

static bool
s_test_connect (herd_tls_t *tls, const char *ca, const char *cert, const char *key, herd_grants_t **grants_p)
{
    int fds [2];
    assert (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    SSL_CTX *context = SSL_CTX_new (TLS_client_method ());
    SSL_CTX_load_verify_locations (context, ca, NULL);
    SSL_CTX_set_verify (context, SSL_VERIFY_PEER, NULL);
    if (cert) {
        assert (SSL_CTX_use_certificate_file (context, cert, SSL_FILETYPE_PEM) == 1);
        assert (SSL_CTX_use_PrivateKey_file (context, key, SSL_FILETYPE_PEM) == 1);
    }
    SSL *client = SSL_new (context);
    SSL_set_fd (client, fds [1]);
    SSL_set_connect_state (client);
    SSL *server = herd_tls_session (tls, fds [0]);
    bool passed = s_test_handshake (server, client);
    if (passed && grants_p) {
        X509 *peer = SSL_get1_peer_certificate (server);
        assert (peer);
        *grants_p = herd_grants_from_certificate (peer);
        X509_free (peer);
    }
    SSL_free (server);
    SSL_free (client);
    SSL_CTX_free (context);
    close (fds [0]);
    close (fds [1]);
    return passed;
}

void
herd_tls_test (bool verbose)
{
    printf (" * herd_tls: ");
    if (verbose)
        printf ("\n");
    char folder [] = "/tmp/herd_tls_test.XXXXXX";
    assert (mkdtemp (folder));
    char *text = zsys_sprintf ("herd\n    keys = %s\nservers\n    A\n        client = off\n"
                               "        client_tls = 127.0.0.1:0\n        bus = tcp://127.0.0.1:1\n", folder);
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "test.cfg", &error);
    assert (config);
    //  No files yet: the error names the file and how to make it
    assert (!herd_tls_new (config, "A", &error));
    assert (strstr (error, "A.crt") && strstr (error, "herd --keygen") && !strchr (error, '\n'));
    freen (error);
    char *ca_cert = herd_config_tls_file (config, "A", "ca");
    char *ca_key = zsys_sprintf ("%s/secret/ca.pem", folder);
    char *cert = herd_config_tls_file (config, "A", "cert");
    char *key = herd_config_tls_file (config, "A", "key");
    char *crl = herd_config_tls_file (config, "A", "crl");
    char *alice = zsys_sprintf ("%s/alice.crt", folder);
    char *alice_key = zsys_sprintf ("%s/alice.pem", folder);
    herd_ca_t *ca = herd_ca_create ("test CA", 1, ca_cert, ca_key, &error);
    assert (ca);
    assert (herd_ca_issue_server (ca, "A", "localhost", 1, cert, key, &error) == 0);
    assert (herd_ca_issue_client (ca, "alice", false, 1, alice, alice_key, &error) == 0);
    herd_tls_t *tls = herd_tls_new (config, "A", &error);
    assert (tls && herd_tls_certs_required (tls));
    assert (strstr (herd_tls_describe (tls), "TLS 1.3, client certificates required"));
    //  A client certificate: in, and it grants alice
    herd_grants_t *grants = NULL;
    assert (s_test_connect (tls, ca_cert, alice, alice_key, &grants));
    assert (herd_grants_allow (grants, "alice", 5) && !herd_grants_allow (grants, "bob", 3));
    herd_grants_destroy (&grants);
    //  None: refused
    assert (!s_test_connect (tls, ca_cert, NULL, NULL, NULL));
    //  Revoked, then reloaded: refused
    assert (herd_ca_revoke (ca, alice, crl, &error) == 0);
    assert (s_test_connect (tls, ca_cert, alice, alice_key, NULL));
    assert (herd_tls_reload (tls, &error) == 0);
    assert (strstr (herd_tls_describe (tls), "ca.crl"));
    assert (!s_test_connect (tls, ca_cert, alice, alice_key, NULL));
    //  A reload that fails keeps the context in use
    chmod (key, 0644);
    assert (herd_tls_reload (tls, &error) == -1);
    assert (strstr (error, "chmod 600"));
    freen (error);
    chmod (key, 0600);
    //  Expired (valid until the second it was made): refused
    assert (herd_ca_issue_client (ca, "bob", false, 0, alice, alice_key, &error) == 0);
    zclock_sleep (1100);
    assert (!s_test_connect (tls, ca_cert, alice, alice_key, NULL));
    herd_tls_destroy (&tls);
    assert (tls == NULL);
    herd_ca_destroy (&ca);
    //  The test's folder, whole
    zdir_t *made = zdir_new (folder, NULL);
    zdir_remove (made, true);
    zdir_destroy (&made);
    freen (ca_cert);
    freen (ca_key);
    freen (cert);
    freen (key);
    freen (crl);
    freen (alice);
    freen (alice_key);
    herd_config_destroy (&config);
    freen (text);
    printf ("OK\n");
}
