//  core/herd_ca.h: the herd's own small certificate authority, for the
//  TLS client port (docs/PROTOCOL.md section 4), so that nobody needs an
//  openssl command to run one: a CA, a certificate per server, client
//  certificates that grant ids, and a revocation list (CRL). Keys are
//  ECDSA P-256, signatures SHA-256, files PEM; private keys are written
//  0600 and a key readable by others is refused when loaded.
//
//  What a client certificate grants is in its subjectAltName, as URIs
//  that "openssl x509 -noout -text" shows as they are:
//      URI:herd:id:alice           the client id "alice"
//      URI:herd:prefix:fleet-      every client id that starts "fleet-"
//  An operator's own CA can issue the same with any tool.

#ifndef HERD_CA_H_INCLUDED
#define HERD_CA_H_INCLUDED

typedef struct _herd_ca_t herd_ca_t;

//  The URI schemes of a grant
#define HERD_CA_GRANT_ID        "herd:id:"
#define HERD_CA_GRANT_PREFIX    "herd:prefix:"

//  Days a certificate is valid unless told otherwise
#define HERD_CA_DAYS_DEFAULT    825
#define HERD_CA_DAYS_CA         3650

//  Loads the CA certificate and its private key (PEM files). NULL and
//  *error_p (one line naming the file) if either is missing, does not
//  parse, does not match, or the key is readable by others.
herd_ca_t *
    herd_ca_load (const char *cert_path, const char *key_path, char **error_p);

//  Makes a new CA named name, valid for days, and writes it: the key
//  (0600, its folder made 0700) and the certificate. NULL and *error_p.
herd_ca_t *
    herd_ca_create (const char *name, int days, const char *cert_path, const char *key_path,
                    char **error_p);

void
    herd_ca_destroy (herd_ca_t **self_p);

//  Issues a server certificate for name, valid for days: its
//  subjectAltName holds the DNS names and addresses in hosts (a space-
//  separated list; numeric ones become IP entries). Writes a new key
//  (0600) and the certificate. 0, or -1 and *error_p.
int
    herd_ca_issue_server (herd_ca_t *self, const char *name, const char *hosts, int days,
                          const char *cert_path, const char *key_path, char **error_p);

//  Issues a client certificate granting one id, or every id that starts
//  with it if prefix is true, valid for days. An id must be printable
//  ASCII without spaces, as the protocol's client ids are (a prefix may be
//  empty: every id, for a trusted gateway). 0, or -1 and *error_p.
int
    herd_ca_issue_client (herd_ca_t *self, const char *id, bool prefix, int days,
                          const char *cert_path, const char *key_path, char **error_p);

//  Adds the certificate at cert_path to the revocation list at crl_path
//  (made if missing), signed anew. 0, or -1 and *error_p.
int
    herd_ca_revoke (herd_ca_t *self, const char *cert_path, const char *crl_path, char **error_p);

//  Reads a private key file, refusing one that others may read (as the
//  CURVE secret keys are refused). The key, or NULL and *error_p.
EVP_PKEY *
    herd_ca_read_key (const char *key_path, char **error_p);

void
    herd_ca_test (bool verbose);

#endif
