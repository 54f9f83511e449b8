//  frontend/herd_grants.c: what a client certificate grants.

#include "frontend/herd_frontend_layer.h"

//  A certificate grants a handful of ids: a list is all it needs
#define S_GRANTS_MAX    64

typedef struct {
    char *id;                   //  Owned
    size_t size;
    bool prefix;
} s_grant_t;

struct _herd_grants_t {
    s_grant_t grants [S_GRANTS_MAX];
    size_t count;
    char *text;                 //  For the log (owned), made on demand
};

herd_grants_t *
herd_grants_new (void)
{
    return (herd_grants_t *) zmalloc (sizeof (herd_grants_t));
}

herd_grants_t *
herd_grants_from_certificate (X509 *certificate)
{
    assert (certificate);
    herd_grants_t *self = herd_grants_new ();
    GENERAL_NAMES *names = (GENERAL_NAMES *) X509_get_ext_d2i (certificate, NID_subject_alt_name, NULL, NULL);
    for (int index = 0; names && index < sk_GENERAL_NAME_num (names); index++) {
        GENERAL_NAME *name = sk_GENERAL_NAME_value (names, index);
        if (name->type != GEN_URI)
            continue;
        const char *uri = (const char *) ASN1_STRING_get0_data (name->d.uniformResourceIdentifier);
        size_t size = (size_t) ASN1_STRING_length (name->d.uniformResourceIdentifier);
        size_t id_size = strlen (HERD_CA_GRANT_ID), prefix_size = strlen (HERD_CA_GRANT_PREFIX);
        if (size > id_size && memcmp (uri, HERD_CA_GRANT_ID, id_size) == 0)
            herd_grants_add (self, uri + id_size, size - id_size, false);
        else
        if (size >= prefix_size && memcmp (uri, HERD_CA_GRANT_PREFIX, prefix_size) == 0)
            herd_grants_add (self, uri + prefix_size, size - prefix_size, true);
    }
    GENERAL_NAMES_free (names);
    return self;
}

void
herd_grants_destroy (herd_grants_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_grants_t *self = *self_p;
        for (size_t index = 0; index < self->count; index++)
            freen (self->grants [index].id);
        freen (self->text);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_grants_add (herd_grants_t *self, const char *id, size_t size, bool prefix)
{
    assert (self && id);
    if (self->count == S_GRANTS_MAX || size > HERD_CLIENT_ID_MAX)
        return;                 //  Grants nothing more: never more than asked
    s_grant_t *grant = &self->grants [self->count++];
    grant->id = (char *) malloc (size + 1);
    assert (grant->id);
    memcpy (grant->id, id, size);
    grant->id [size] = 0;
    grant->size = size;
    grant->prefix = prefix;
    freen (self->text);
}

bool
herd_grants_allow (herd_grants_t *self, const char *id, size_t size)
{
    assert (self && id);
    for (size_t index = 0; index < self->count; index++) {
        s_grant_t *grant = &self->grants [index];
        if (grant->prefix? size >= grant->size && memcmp (id, grant->id, grant->size) == 0
                         : size == grant->size && memcmp (id, grant->id, size) == 0)
            return true;
    }
    return false;
}

const char *
herd_grants_text (herd_grants_t *self)
{
    assert (self);
    if (!self->text) {
        self->text = strdup (self->count? "": "nothing");
        for (size_t index = 0; index < self->count; index++) {
            char *longer = zsys_sprintf ("%s%s%s%s", self->text, index? ", ": "",
                                         self->grants [index].id, self->grants [index].prefix? "*": "");
            freen (self->text);
            self->text = longer;
        }
    }
    return self->text;
}

//  --------------------------------------------------------------------------
//  Selftest: exact ids and prefixes, by hand and from a certificate

void
herd_grants_test (bool verbose)
{
    printf (" * herd_grants: ");
    if (verbose)
        printf ("\n");
    herd_grants_t *grants = herd_grants_new ();
    assert (!herd_grants_allow (grants, "alice", 5));
    assert (streq (herd_grants_text (grants), "nothing"));
    herd_grants_add (grants, "alice", 5, false);
    herd_grants_add (grants, "fleet-", 6, true);
    assert (herd_grants_allow (grants, "alice", 5));
    assert (!herd_grants_allow (grants, "alice2", 6));
    assert (!herd_grants_allow (grants, "alic", 4));
    assert (herd_grants_allow (grants, "fleet-7", 7));
    assert (herd_grants_allow (grants, "fleet-", 6));
    assert (!herd_grants_allow (grants, "fleetx", 6));
    assert (!herd_grants_allow (grants, "fleet", 5));
    assert (streq (herd_grants_text (grants), "alice, fleet-*"));
    herd_grants_destroy (&grants);
    assert (grants == NULL);

    //  From certificates the herd's CA issues
    char folder [] = "/tmp/herd_grants_test.XXXXXX";
    assert (mkdtemp (folder));
    char *ca_cert = zsys_sprintf ("%s/ca.crt", folder);
    char *ca_key = zsys_sprintf ("%s/ca.pem", folder);
    char *cert = zsys_sprintf ("%s/client.crt", folder);
    char *key = zsys_sprintf ("%s/client.pem", folder);
    char *error = NULL;
    herd_ca_t *ca = herd_ca_create ("test CA", 1, ca_cert, ca_key, &error);
    assert (ca);
    assert (herd_ca_issue_client (ca, "fleet-", true, 1, cert, key, &error) == 0);
    FILE *file = fopen (cert, "r");
    X509 *certificate = PEM_read_X509 (file, NULL, NULL, NULL);
    fclose (file);
    grants = herd_grants_from_certificate (certificate);
    assert (herd_grants_allow (grants, "fleet-7", 7) && !herd_grants_allow (grants, "fleetx", 6));
    herd_grants_destroy (&grants);
    X509_free (certificate);
    //  A certificate with no herd URI grants nothing
    file = fopen (ca_cert, "r");
    certificate = PEM_read_X509 (file, NULL, NULL, NULL);
    fclose (file);
    grants = herd_grants_from_certificate (certificate);
    assert (!herd_grants_allow (grants, "", 0) && !herd_grants_allow (grants, "x", 1));
    herd_grants_destroy (&grants);
    X509_free (certificate);
    herd_ca_destroy (&ca);
    zdir_t *made = zdir_new (folder, NULL);
    zdir_remove (made, true);
    zdir_destroy (&made);
    freen (ca_cert);
    freen (ca_key);
    freen (cert);
    freen (key);
    printf ("OK\n");
}
