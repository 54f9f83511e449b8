//  core/herd_ca.c: the herd's certificate authority.

#include "core/herd_core_layer.h"
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <arpa/inet.h>

struct _herd_ca_t {
    X509 *cert;                 //  The CA's certificate (owned)
    EVP_PKEY *key;              //  Its private key (owned)
};

//  OpenSSL's last error as one line, or what
static char *
s_error (const char *what, const char *path)
{
    unsigned long code = ERR_get_error ();
    ERR_clear_error ();
    char reason [256] = "";
    if (code)
        ERR_error_string_n (code, reason, sizeof reason);
    return zsys_sprintf ("%s: %s%s%s", path, what, code? ": ": "", reason);
}

EVP_PKEY *
herd_ca_read_key (const char *key_path, char **error_p)
{
    assert (key_path && error_p);
    FILE *file = fopen (key_path, "r");
    if (!file) {
        *error_p = zsys_sprintf ("%s: cannot read the private key: %s", key_path, strerror (errno));
        return NULL;
    }
    struct stat status;
    if (fstat (fileno (file), &status) == 0 && (status.st_mode & 077)) {
        *error_p = zsys_sprintf ("%s: a private key that others may read (mode %04o) is refused; "
                                 "fix it with: chmod 600 %s", key_path, (unsigned) (status.st_mode & 07777),
                                 key_path);
        fclose (file);
        return NULL;
    }
    EVP_PKEY *key = PEM_read_PrivateKey (file, NULL, NULL, NULL);
    fclose (file);
    if (!key)
        *error_p = s_error ("not a PEM private key", key_path);
    return key;
}

static X509 *
s_read_cert (const char *path, char **error_p)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        *error_p = zsys_sprintf ("%s: cannot read the certificate: %s", path, strerror (errno));
        return NULL;
    }
    X509 *cert = PEM_read_X509 (file, NULL, NULL, NULL);
    fclose (file);
    if (!cert)
        *error_p = s_error ("not a PEM certificate", path);
    return cert;
}

//  Writes the key 0600 (its folder made, 0700 if new) and the certificate
static int
s_write (X509 *cert, EVP_PKEY *key, const char *cert_path, const char *key_path, char **error_p)
{
    if (key) {
        char *folder = strdup (key_path);
        char *slash = strrchr (folder, '/');
        if (slash) {
            *slash = 0;
            bool made = !zsys_file_exists (folder);
            zsys_dir_create ("%s", folder);
            if (made)
                chmod (folder, 0700);
        }
        freen (folder);
        int fd = open (key_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        FILE *file = fd == -1? NULL: fdopen (fd, "w");
        bool written = file && PEM_write_PrivateKey (file, key, NULL, NULL, 0, NULL, NULL);
        if (file && fclose (file))
            written = false;
        else
        if (!file && fd != -1)
            close (fd);
        if (!written) {
            *error_p = zsys_sprintf ("%s: cannot write the private key: %s", key_path, strerror (errno));
            return -1;
        }
    }
    herd_file_create_folder (cert_path);
    FILE *file = fopen (cert_path, "w");
    bool written = file && PEM_write_X509 (file, cert);
    if (file && fclose (file))
        written = false;
    if (!written) {
        *error_p = zsys_sprintf ("%s: cannot write the certificate: %s", cert_path, strerror (errno));
        return -1;
    }
    return 0;
}

//  An extension from its text form, as openssl.cnf spells it
static int
s_extend (X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX context;
    X509V3_set_ctx_nodb (&context);
    X509V3_set_ctx (&context, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid (NULL, &context, nid, value);
    if (!extension)
        return -1;
    int rc = X509_add_ext (cert, extension, -1)? 0: -1;
    X509_EXTENSION_free (extension);
    return rc;
}

//  A certificate for subject's new key, valid for days from now, with a
//  random serial; signed by the CA (or by itself, for the CA)
static X509 *
s_certificate (herd_ca_t *self, EVP_PKEY *key, const char *common_name, int days,
               const char *extensions [][2])
{
    X509 *cert = X509_new ();
    X509 *issuer = self? self->cert: cert;
    X509_set_version (cert, 2);
    unsigned char serial [16];
    RAND_bytes (serial, sizeof serial);
    serial [0] &= 0x7f;                 //  Positive
    BIGNUM *number = BN_bin2bn (serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER (number, X509_get_serialNumber (cert));
    BN_free (number);
    //  An hour back: clocks of a herd's machines differ a little
    X509_gmtime_adj (X509_getm_notBefore (cert), -3600);
    X509_time_adj_ex (X509_getm_notAfter (cert), days, 0, NULL);
    X509_set_pubkey (cert, key);
    X509_NAME *name = X509_get_subject_name (cert);
    X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const unsigned char *) "herd", -1, -1, 0);
    X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) common_name, -1, -1, 0);
    X509_set_issuer_name (cert, X509_get_subject_name (issuer));
    bool ok = s_extend (cert, issuer, NID_subject_key_identifier, "hash") == 0
           && s_extend (cert, issuer, NID_authority_key_identifier, "keyid:always") == 0;
    for (int index = 0; ok && extensions [index][0]; index++)
        ok = s_extend (cert, issuer, OBJ_txt2nid (extensions [index][0]), extensions [index][1]) == 0;
    if (!ok || !X509_sign (cert, self? self->key: key, EVP_sha256 ())) {
        X509_free (cert);
        return NULL;
    }
    return cert;
}

herd_ca_t *
herd_ca_load (const char *cert_path, const char *key_path, char **error_p)
{
    assert (cert_path && key_path && error_p);
    X509 *cert = s_read_cert (cert_path, error_p);
    EVP_PKEY *key = cert? herd_ca_read_key (key_path, error_p): NULL;
    if (key && X509_check_private_key (cert, key) != 1) {
        *error_p = zsys_sprintf ("%s is not the key of %s", key_path, cert_path);
        EVP_PKEY_free (key);
        key = NULL;
    }
    if (!key) {
        X509_free (cert);
        return NULL;
    }
    herd_ca_t *self = (herd_ca_t *) zmalloc (sizeof (herd_ca_t));
    self->cert = cert;
    self->key = key;
    return self;
}

herd_ca_t *
herd_ca_create (const char *name, int days, const char *cert_path, const char *key_path, char **error_p)
{
    assert (name && cert_path && key_path && error_p);
    EVP_PKEY *key = EVP_EC_gen ("P-256");
    assert (key);
    const char *extensions [][2] = {
        { "basicConstraints", "critical,CA:TRUE,pathlen:0" },
        { "keyUsage", "critical,keyCertSign,cRLSign" },
        { NULL, NULL }
    };
    X509 *cert = s_certificate (NULL, key, name, days, extensions);
    if (!cert || s_write (cert, key, cert_path, key_path, error_p)) {
        if (!cert)
            *error_p = s_error ("cannot make the CA certificate", cert_path);
        X509_free (cert);
        EVP_PKEY_free (key);
        return NULL;
    }
    herd_ca_t *self = (herd_ca_t *) zmalloc (sizeof (herd_ca_t));
    self->cert = cert;
    self->key = key;
    return self;
}

void
herd_ca_destroy (herd_ca_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_ca_t *self = *self_p;
        X509_free (self->cert);
        EVP_PKEY_free (self->key);
        freen (self);
        *self_p = NULL;
    }
}

//  Issues a certificate for a new key with these extensions, and writes both
static int
s_issue (herd_ca_t *self, const char *common_name, int days, const char *extensions [][2],
         const char *cert_path, const char *key_path, char **error_p)
{
    EVP_PKEY *key = EVP_EC_gen ("P-256");
    assert (key);
    X509 *cert = s_certificate (self, key, common_name, days, extensions);
    int rc = -1;
    if (!cert)
        *error_p = s_error ("cannot make the certificate", cert_path);
    else
        rc = s_write (cert, key, cert_path, key_path, error_p);
    X509_free (cert);
    EVP_PKEY_free (key);
    return rc;
}

int
herd_ca_issue_server (herd_ca_t *self, const char *name, const char *hosts, int days,
                      const char *cert_path, const char *key_path, char **error_p)
{
    assert (self && name && hosts && cert_path && key_path && error_p);
    //  "DNS:bailey,IP:127.0.0.1,..."
    char *names = strdup ("");
    char *list = strdup (hosts);
    char *saveptr = NULL;
    for (char *host = strtok_r (list, " ", &saveptr); host; host = strtok_r (NULL, " ", &saveptr)) {
        unsigned char address [16];
        bool numeric = inet_pton (AF_INET, host, address) == 1 || inet_pton (AF_INET6, host, address) == 1;
        char *longer = zsys_sprintf ("%s%s%s:%s", names, *names? ",": "", numeric? "IP": "DNS", host);
        freen (names);
        names = longer;
    }
    freen (list);
    const char *extensions [][2] = {
        { "basicConstraints", "critical,CA:FALSE" },
        { "keyUsage", "critical,digitalSignature" },
        { "extendedKeyUsage", "serverAuth" },
        { "subjectAltName", names },
        { NULL, NULL }
    };
    if (!*names)
        extensions [3][0] = NULL;
    int rc = s_issue (self, name, days, extensions, cert_path, key_path, error_p);
    freen (names);
    return rc;
}

int
herd_ca_issue_client (herd_ca_t *self, const char *id, bool prefix, int days,
                      const char *cert_path, const char *key_path, char **error_p)
{
    assert (self && id && cert_path && key_path && error_p);
    if (strlen (id) > HERD_CLIENT_ID_MAX || (!prefix && !*id)) {
        *error_p = zsys_sprintf ("a client id has 1 to %d bytes", HERD_CLIENT_ID_MAX);
        return -1;
    }
    for (const char *byte = id; *byte; byte++)
        if (*byte <= ' ' || *byte > '~' || *byte == ',') {
            *error_p = zsys_sprintf ("client id \"%s\": a certificate grants printable ASCII ids "
                                     "without spaces or commas", id);
            return -1;
        }
    char *granted = zsys_sprintf ("URI:%s%s", prefix? HERD_CA_GRANT_PREFIX: HERD_CA_GRANT_ID, id);
    const char *extensions [][2] = {
        { "basicConstraints", "critical,CA:FALSE" },
        { "keyUsage", "critical,digitalSignature" },
        { "extendedKeyUsage", "clientAuth" },
        { "subjectAltName", granted },
        { NULL, NULL }
    };
    char *common_name = zsys_sprintf ("%s%s", id, prefix? "*": "");
    int rc = s_issue (self, common_name, days, extensions, cert_path, key_path, error_p);
    freen (common_name);
    freen (granted);
    return rc;
}

int
herd_ca_revoke (herd_ca_t *self, const char *cert_path, const char *crl_path, char **error_p)
{
    assert (self && cert_path && crl_path && error_p);
    X509 *cert = s_read_cert (cert_path, error_p);
    if (!cert)
        return -1;
    if (X509_NAME_cmp (X509_get_issuer_name (cert), X509_get_subject_name (self->cert))) {
        *error_p = zsys_sprintf ("%s: not issued by this CA", cert_path);
        X509_free (cert);
        return -1;
    }
    X509_CRL *crl = NULL;
    FILE *file = fopen (crl_path, "r");
    if (file) {
        crl = PEM_read_X509_CRL (file, NULL, NULL, NULL);
        fclose (file);
        if (!crl) {
            *error_p = s_error ("not a PEM revocation list", crl_path);
            X509_free (cert);
            return -1;
        }
    }
    else {
        crl = X509_CRL_new ();
        X509_CRL_set_version (crl, 1);
        X509_CRL_set_issuer_name (crl, X509_get_subject_name (self->cert));
    }
    X509_REVOKED *revoked = X509_REVOKED_new ();
    X509_REVOKED_set_serialNumber (revoked, X509_get_serialNumber (cert));
    ASN1_TIME *now = X509_gmtime_adj (NULL, 0);
    X509_REVOKED_set_revocationDate (revoked, now);
    X509_CRL_add0_revoked (crl, revoked);
    X509_CRL_set1_lastUpdate (crl, now);
    //  No nextUpdate: the list holds until the operator replaces it
    X509_CRL_sort (crl);
    ASN1_TIME_free (now);
    int rc = -1;
    if (!X509_CRL_sign (crl, self->key, EVP_sha256 ()))
        *error_p = s_error ("cannot sign the revocation list", crl_path);
    else {
        //  Written beside, then renamed: a server reloading it never reads half
        char *temporary = zsys_sprintf ("%s.new", crl_path);
        herd_file_create_folder (crl_path);
        file = fopen (temporary, "w");
        bool written = file && PEM_write_X509_CRL (file, crl);
        if (file && fclose (file))
            written = false;
        if (written && rename (temporary, crl_path) == 0)
            rc = 0;
        else
            *error_p = zsys_sprintf ("%s: cannot write the revocation list: %s", crl_path, strerror (errno));
        freen (temporary);
    }
    X509_CRL_free (crl);
    X509_free (cert);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: a CA, a server and a client certificate, checked with
//  OpenSSL's own verifier, then one revoked

static int
s_test_verify (const char *ca_path, const char *cert_path, const char *crl_path)
{
    X509_STORE *store = X509_STORE_new ();
    X509_STORE_load_file (store, ca_path);
    if (crl_path) {
        X509_LOOKUP *lookup = X509_STORE_add_lookup (store, X509_LOOKUP_file ());
        X509_load_crl_file (lookup, crl_path, X509_FILETYPE_PEM);
        X509_STORE_set_flags (store, X509_V_FLAG_CRL_CHECK);
    }
    char *error = NULL;
    X509 *cert = s_read_cert (cert_path, &error);
    assert (cert);
    X509_STORE_CTX *context = X509_STORE_CTX_new ();
    X509_STORE_CTX_init (context, store, cert, NULL);
    int rc = X509_verify_cert (context) == 1? X509_V_OK: X509_STORE_CTX_get_error (context);
    X509_STORE_CTX_free (context);
    X509_free (cert);
    X509_STORE_free (store);
    return rc;
}

void
herd_ca_test (bool verbose)
{
    printf (" * herd_ca: ");
    if (verbose)
        printf ("\n");
    char folder [] = "/tmp/herd_ca_test.XXXXXX";
    assert (mkdtemp (folder));
    char *ca_cert = zsys_sprintf ("%s/ca.crt", folder);
    char *ca_key = zsys_sprintf ("%s/secret/ca.pem", folder);
    char *cert = zsys_sprintf ("%s/alice.crt", folder);
    char *key = zsys_sprintf ("%s/alice.pem", folder);
    char *crl = zsys_sprintf ("%s/ca.crl", folder);
    char *error = NULL;
    herd_ca_t *ca = herd_ca_create ("test CA", 30, ca_cert, ca_key, &error);
    assert (ca);
    struct stat status;
    assert (stat (ca_key, &status) == 0 && (status.st_mode & 0777) == 0600);
    herd_ca_destroy (&ca);
    //  Loaded back; a key others may read is refused
    ca = herd_ca_load (ca_cert, ca_key, &error);
    assert (ca);
    chmod (ca_key, 0644);
    assert (!herd_ca_load (ca_cert, ca_key, &error));
    assert (strstr (error, "chmod 600") && !strchr (error, '\n'));
    freen (error);
    chmod (ca_key, 0600);

    //  A client certificate: valid, and its grant is in subjectAltName
    assert (herd_ca_issue_client (ca, "alice", false, 1, cert, key, &error) == 0);
    assert (s_test_verify (ca_cert, cert, NULL) == X509_V_OK);
    X509 *issued = s_read_cert (cert, &error);
    GENERAL_NAMES *names = (GENERAL_NAMES *) X509_get_ext_d2i (issued, NID_subject_alt_name, NULL, NULL);
    assert (names && sk_GENERAL_NAME_num (names) == 1);
    GENERAL_NAME *name = sk_GENERAL_NAME_value (names, 0);
    assert (name->type == GEN_URI);
    assert (streq ((const char *) ASN1_STRING_get0_data (name->d.uniformResourceIdentifier), "herd:id:alice"));
    GENERAL_NAMES_free (names);
    X509_free (issued);
    //  Ids the protocol could not carry are refused
    assert (herd_ca_issue_client (ca, "two words", false, 1, cert, key, &error) == -1);
    freen (error);
    assert (herd_ca_issue_client (ca, "", false, 1, cert, key, &error) == -1);
    freen (error);
    //  A server certificate names its hosts
    char *server_cert = zsys_sprintf ("%s/Bailey.crt", folder);
    char *server_key = zsys_sprintf ("%s/Bailey.pem", folder);
    assert (herd_ca_issue_server (ca, "Bailey", "bailey localhost 127.0.0.1 ::1", 1,
                                  server_cert, server_key, &error) == 0);
    assert (s_test_verify (ca_cert, server_cert, NULL) == X509_V_OK);
    //  Revoked: the CRL names it, the other still passes
    assert (herd_ca_issue_client (ca, "fleet-", true, 1, cert, key, &error) == 0);
    assert (herd_ca_revoke (ca, cert, crl, &error) == 0);
    assert (s_test_verify (ca_cert, cert, crl) == X509_V_ERR_CERT_REVOKED);
    assert (s_test_verify (ca_cert, server_cert, crl) == X509_V_OK);
    assert (herd_ca_revoke (ca, server_cert, crl, &error) == 0);          //  Added to the list
    assert (s_test_verify (ca_cert, server_cert, crl) == X509_V_ERR_CERT_REVOKED);
    assert (s_test_verify (ca_cert, cert, crl) == X509_V_ERR_CERT_REVOKED);
    //  Another CA's certificate does not verify
    herd_ca_t *other = herd_ca_create ("other CA", 30, ca_cert, ca_key, &error);
    assert (other);
    assert (s_test_verify (ca_cert, server_cert, NULL) != X509_V_OK);
    herd_ca_destroy (&other);
    herd_ca_destroy (&ca);
    assert (ca == NULL);
    //  The test's folder, whole
    zdir_t *made = zdir_new (folder, NULL);
    zdir_remove (made, true);
    zdir_destroy (&made);
    freen (ca_cert);
    freen (ca_key);
    freen (cert);
    freen (key);
    freen (crl);
    freen (server_cert);
    freen (server_key);
    printf ("OK\n");
}
