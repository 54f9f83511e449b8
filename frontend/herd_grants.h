//  frontend/herd_grants.h: the client ids a TLS connection may name in
//  IAMAT and WHATSAT: what its client certificate grants (docs/PROTOCOL.md
//  section 4), exact ids and id prefixes. Read from the certificate's
//  subjectAltName URIs "herd:id:ID" and "herd:prefix:PREFIX" (core/herd_ca
//  issues them; any CA may). A connection with no grants object (the plain
//  port, or TLS with client certificates optional and none given) may name
//  every id.

#ifndef HERD_GRANTS_H_INCLUDED
#define HERD_GRANTS_H_INCLUDED

typedef struct _herd_grants_t herd_grants_t;

//  Grants nothing
herd_grants_t *
    herd_grants_new (void);

//  What certificate grants (nothing if it names no herd URI)
herd_grants_t *
    herd_grants_from_certificate (X509 *certificate);

void
    herd_grants_destroy (herd_grants_t **self_p);

//  Grants id (size bytes), or every id that starts with it
void
    herd_grants_add (herd_grants_t *self, const char *id, size_t size, bool prefix);

//  True if id (size bytes) is granted
bool
    herd_grants_allow (herd_grants_t *self, const char *id, size_t size);

//  What it grants, for the log: "alice, fleet-*", or "nothing". Borrowed.
const char *
    herd_grants_text (herd_grants_t *self);

void
    herd_grants_test (bool verbose);

#endif
