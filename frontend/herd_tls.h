//  frontend/herd_tls.h: the TLS client port's context (OpenSSL 3): the
//  server's certificate and key, the CA whose client certificates it
//  takes, the revocation list, the protocol versions. Each connection on
//  the port gets a session from it (frontend/herd_stream runs the
//  handshake, non-blocking, in the client loop). Reloaded on SIGHUP: new
//  connections use the new files, open ones keep theirs.
//
//  Defaults (docs/security.md): TLS 1.3 only (tls/min_version = 1.2
//  allows 1.2, never renegotiation), a client certificate signed by the
//  CA required (tls/client_certs = optional lets a connection without
//  one in, granted every id as on the plain port), no session tickets or
//  resumption (a revoked certificate cannot come back through a resumed
//  session), the CRL checked when there is one.

#ifndef HERD_TLS_H_INCLUDED
#define HERD_TLS_H_INCLUDED

typedef struct _herd_tls_t herd_tls_t;

//  Loads the files the config names for server (herd_config_tls_file).
//  NULL and *error_p (one line naming the file and setting) if one is
//  missing, does not parse, or a key is readable by others.
herd_tls_t *
    herd_tls_new (herd_config_t *config, const char *server, char **error_p);

void
    herd_tls_destroy (herd_tls_t **self_p);

//  Reads every file again. 0, or -1 and *error_p: then the old context
//  stays in use.
int
    herd_tls_reload (herd_tls_t *self, char **error_p);

//  A new server session on fd (a socket the connection owns)
SSL *
    herd_tls_session (herd_tls_t *self, int fd);

//  True if a connection must show a client certificate
bool
    herd_tls_certs_required (herd_tls_t *self);

//  What the context does, for the log: versions, client certificates, CRL
const char *
    herd_tls_describe (herd_tls_t *self);

void
    herd_tls_test (bool verbose);

#endif
