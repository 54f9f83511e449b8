//  herd_tools.c: herd's command-line tools, apart from the server's main:
//  --keygen, --keys-for, --list, --state, --stats, --ready and --alive.

#include "herd_classes.h"
#include "herd_tools.h"
#include <dirent.h>

//  The config, or NULL after one line on stderr saying what is wrong
herd_config_t *
herd_tools_load_config (const char *config_file)
{
    char *error = NULL;
    herd_config_t *config = herd_config_load (config_file, &error);
    if (!config)
        fprintf (stderr, "herd: %s\n", error);
    freen (error);
    return config;
}

//  Asks a running server's admin endpoint; prints the JSON answer
//  The server's admin endpoint, asked with cert's key (a monitor's, or a
//  server's: one the server admits); NULL after one line on stderr
static herd_admin_t *
s_admin_open (herd_config_t *config, const char *server, const char *cert, herd_keys_t **keys_p)
{
    char *error = NULL;
    *keys_p = herd_keys_new (config, cert, &error);
    herd_admin_t *admin = *keys_p? herd_admin_new (config, *keys_p, server, &error): NULL;
    if (!admin) {
        fprintf (stderr, "herd: %s\n", error);
        freen (error);
        herd_keys_destroy (keys_p);
    }
    return admin;
}

int
herd_tools_ask_admin (herd_config_t *config, const char *server, const char *request, const char *cert)
{
    herd_keys_t *keys = NULL;
    herd_admin_t *admin = s_admin_open (config, server, cert, &keys);
    if (!admin)
        return 1;
    json_t *answer = herd_admin_ask (admin, request, 3000);
    int rc = 0;
    if (answer && json_object_get (answer, "error")) {
        fprintf (stderr, "herd: %s: %s\n", server, json_string_value (json_object_get (answer, "error")));
        rc = 1;
    }
    else
    if (answer) {
        //  Indented for a person at a terminal, one line for a script (as
        //  redis-cli does): the same JSON either way
        char *text = json_dumps (answer, isatty (STDOUT_FILENO)? JSON_INDENT (2): JSON_COMPACT);
        printf ("%s\n", text);
        freen (text);
    }
    else {
        fprintf (stderr, "herd: no answer from %s at %s within 3 s\n", server, herd_admin_endpoint (admin));
        rc = 1;
    }
    json_decref (answer);
    herd_admin_destroy (&admin);
    herd_keys_destroy (&keys);
    return rc;
}

static int s_copy (const char *from, const char *to, mode_t mode);

int
herd_tools_clients (herd_config_t *config, const char *server, const char *cert, const char *path)
{
    herd_keys_t *keys = NULL;
    herd_admin_t *admin = s_admin_open (config, server, cert, &keys);
    if (!admin)
        return 1;
    //  A dump goes to a file beside its name, renamed when whole, 0600:
    //  it holds every client's location
    char *temporary = path? zsys_sprintf ("%s.partial", path): NULL;
    int fd = path? open (temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600): -1;
    FILE *out = path? (fd == -1? NULL: fdopen (fd, "w")): stdout;
    int rc = 0;
    if (!out) {
        fprintf (stderr, "herd: cannot write %s: %s\n", temporary, strerror (errno));
        rc = 1;
    }
    size_t located = 0, forgotten = 0;
    json_int_t cursor = 0;
    do {
        char request [64];
        snprintf (request, sizeof request, "CLIENTS %lld 1000", (long long) cursor);
        json_t *page = rc? NULL: herd_admin_ask (admin, request, 10000);
        json_t *lines = json_object_get (page, "clients");
        if (!json_is_array (lines)) {
            if (!rc)
                fprintf (stderr, "herd: no answer from %s at %s within 10 s\n", server, herd_admin_endpoint (admin));
            json_decref (page);
            rc = 1;
            break;
        }
        size_t index;
        json_t *line;
        json_array_foreach (lines, index, line) {
            const char *text = json_string_value (line);
            fprintf (out, "%s\n", text);
            if (!strncmp (text, "GONE ", 5))
                forgotten++;
            else
                located++;
        }
        cursor = json_integer_value (json_object_get (page, "cursor"));
        json_decref (page);
    } while (cursor);
    if (path && out && (fclose (out) || (rc == 0 && rename (temporary, path)))) {
        fprintf (stderr, "herd: cannot write %s: %s\n", path, strerror (errno));
        rc = 1;
    }
    if (temporary && rc)
        unlink (temporary);
    if (rc == 0)
        fprintf (path? stdout: stderr, "%s: %zu clients, %zu forgotten (tombstones)%s%s\n", server, located,
                 forgotten, path? ", written to ": "", path? path: "");
    freen (temporary);
    herd_admin_destroy (&admin);
    herd_keys_destroy (&keys);
    return rc;
}

//  The herd's CA: loaded, or made (and said so) if make and there is
//  none yet. NULL after one line on stderr.
static herd_ca_t *
s_ca (herd_config_t *config, bool make)
{
    char *cert = herd_config_tls_file (config, "", "ca");
    char *key = herd_config_tls_file (config, "", "ca_key");
    char *error = NULL;
    herd_ca_t *ca = NULL;
    if (make && !zsys_file_exists (cert) && !zsys_file_exists (key)) {
        ca = herd_ca_create ("herd CA", HERD_CA_DAYS_CA, cert, key, &error);
        if (ca)
            printf ("herd CA: %s, %s (made; sign client certificates with "
                    "herd --client-cert ID --out DIR)\n", cert, key);
    }
    else
        ca = herd_ca_load (cert, key, &error);
    if (!ca) {
        fprintf (stderr, "herd: the herd's CA: %s\n", error);
        freen (error);
    }
    freen (cert);
    freen (key);
    return ca;
}

//  A server's TLS certificate and key, signed by the herd's CA (made
//  first if there is none): the names it answers to are its client_tls
//  host, its name in lower case (a container's host name) and the
//  loopback. Kept if they exist.
static int
s_keygen_tls (herd_config_t *config, const char *server)
{
    char *cert = herd_config_tls_file (config, server, "cert");
    char *key = herd_config_tls_file (config, server, "key");
    int rc = 0;
    if (zsys_file_exists (cert) && zsys_file_exists (key))
        printf ("%s: %s, %s (kept)\n", server, cert, key);
    else {
        herd_ca_t *ca = s_ca (config, true);
        char *hosts = strdup ("localhost 127.0.0.1 ::1");
        char *lower = strdup (server);
        for (char *letter = lower; *letter; letter++)
            *letter = (char) tolower ((unsigned char) *letter);
        const char *tls_bind = herd_config_server_endpoint (config, server, "client_tls");
        char *tls_host = tls_bind? strndup (tls_bind, strrchr (tls_bind, ':') - tls_bind): strdup ("");
        //  A wildcard bind names no host a client would ask for
        if (streq (tls_host, "0.0.0.0") || streq (tls_host, "*") || streq (tls_host, "[::]")
        ||  streq (tls_host, "::"))
            *tls_host = 0;
        char *all = zsys_sprintf ("%s %s %s", hosts, lower, tls_host);
        char *error = NULL;
        if (!ca)
            rc = 1;
        else
        if (herd_ca_issue_server (ca, server, all, HERD_CA_DAYS_DEFAULT, cert, key, &error)) {
            fprintf (stderr, "herd: %s\n", error);
            freen (error);
            rc = 1;
        }
        else
            printf ("%s: %s, %s (made, for %s)\n", server, cert, key, all);
        herd_ca_destroy (&ca);
        freen (hosts);
        freen (lower);
        freen (tls_host);
        freen (all);
    }
    freen (cert);
    freen (key);
    return rc;
}

int
herd_tools_client_cert (const char *config_file, const char *id, bool prefix, const char *out, int days)
{
    herd_config_t *config = herd_tools_load_config (config_file);
    if (!config)
        return 1;
    herd_ca_t *ca = s_ca (config, false);
    int rc = 1;
    if (ca) {
        const char *base = *id? id: "any";
        char *cert = zsys_sprintf ("%s/%s.crt", out, base);
        char *key = zsys_sprintf ("%s/%s.key", out, base);
        char *error = NULL;
        if (herd_ca_issue_client (ca, id, prefix, days, cert, key, &error)) {
            fprintf (stderr, "herd: %s\n", error);
            freen (error);
        }
        else {
            printf ("%s: %s, %s: grants %s%s%s, valid %d days\n", base, cert, key,
                    prefix? "every client id that starts with \"": "the client id \"", id,
                    prefix? "\"": "\"", days);
            rc = 0;
        }
        //  Beside them, the CA's certificate: what the client trusts the
        //  servers by (a client needs nothing else from the herd)
        char *ca_cert = herd_config_tls_file (config, "", "ca");
        char *ca_copy = zsys_sprintf ("%s/ca.crt", out);
        if (rc == 0 && !streq (ca_cert, ca_copy) && s_copy (ca_cert, ca_copy, 0644)) {
            fprintf (stderr, "herd: cannot copy %s to %s: %s\n", ca_cert, ca_copy, strerror (errno));
            rc = 1;
        }
        freen (ca_cert);
        freen (ca_copy);
        freen (cert);
        freen (key);
        herd_ca_destroy (&ca);
    }
    herd_config_destroy (&config);
    return rc;
}

int
herd_tools_revoke (const char *config_file, const char *cert)
{
    herd_config_t *config = herd_tools_load_config (config_file);
    if (!config)
        return 1;
    herd_ca_t *ca = s_ca (config, false);
    char *crl = herd_config_tls_file (config, "", "crl");
    char *error = NULL;
    int rc = 1;
    if (ca && herd_ca_revoke (ca, cert, crl, &error) == 0) {
        printf ("revoked %s: %s lists it; send SIGHUP to every server (or restart them) "
                "to refuse it\n", cert, crl);
        rc = 0;
    }
    else
    if (ca) {
        fprintf (stderr, "herd: %s\n", error);
        freen (error);
    }
    herd_ca_destroy (&ca);
    freen (crl);
    herd_config_destroy (&config);
    return rc;
}

//  herd --keygen [NAME ...]: certificates for the names given, or for
//  every server of the config and one monitor ("monitor"); keys that
//  exist are kept
int
herd_tools_keygen (const char *config_file, int count, char *names [])
{
    herd_config_t *config = herd_tools_load_config (config_file);
    if (!config)
        return 1;
    zlistx_t *wanted = zlistx_new ();       //  Borrowed names
    for (int index = 0; index < count; index++)
        zlistx_add_end (wanted, names [index]);
    if (!count) {
        zlistx_t *servers = herd_config_servers (config);
        for (char *name = (char *) zlistx_first (servers); name; name = (char *) zlistx_next (servers))
            zlistx_add_end (wanted, name);
        zlistx_add_end (wanted, "monitor");
    }
    int rc = 0;
    const char *folder = herd_config_string (config, "herd/keys");
    for (const char *name = (const char *) zlistx_first (wanted); name && !rc;
         name = (const char *) zlistx_next (wanted)) {
        char *error = NULL;
        int made = herd_keys_generate (config, name, &error);
        if (made == -1) {
            fprintf (stderr, "herd: %s\n", error);
            freen (error);
            rc = 1;
        }
        else
            printf ("%s: %s/public/%s.key, %s/secret/%s.key_secret (%s)\n", name, folder, name,
                    folder, name, made? "made": "kept");
        if (!rc && herd_config_has_server (config, name))
            rc = s_keygen_tls (config, name);
    }
    zlistx_destroy (&wanted);
    herd_config_destroy (&config);
    return rc;
}

//  Copies a file; 0 or -1
static int
s_copy (const char *from, const char *to, mode_t mode)
{
    zchunk_t *chunk = zchunk_slurp (from, 64 * 1024);
    if (!chunk)
        return -1;
    int fd = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int rc = fd == -1 || herd_file_write_all (fd, zchunk_data (chunk), zchunk_size (chunk));
    if (fd != -1)
        close (fd);
    zchunk_destroy (&chunk);
    return rc? -1: 0;
}

//  herd --keys-for NAME FROM TO: from a folder holding every key of the
//  herd side by side (a Kubernetes Secret mounted as files), lays out
//  TO/public/ with every public key and TO/secret/ with NAME's secret key
//  alone: a server never sees another's secret
int
herd_tools_keys_for (const char *name, const char *from, const char *to)
{
    DIR *folder = opendir (from);
    if (!folder) {
        fprintf (stderr, "herd: --keys-for: cannot read %s: %s\n", from, strerror (errno));
        return 1;
    }
    char *secret_name = zsys_sprintf ("%s.key_secret", name);
    //  The TLS port's, where the Secret has them: the CA's certificate,
    //  NAME's certificate and key (never the CA's key)
    char *tls_cert = zsys_sprintf ("%s.crt", name);
    char *tls_key = zsys_sprintf ("%s.pem", name);
    zsys_dir_create ("%s/public", to);
    zsys_dir_create ("%s/secret", to);
    //  As --keygen makes it: only the server's user may list its secret
    char *secret_folder = zsys_sprintf ("%s/secret", to);
    if (chmod (secret_folder, 0700))
        fprintf (stderr, "herd: --keys-for: cannot restrict %s: %s\n", secret_folder, strerror (errno));
    freen (secret_folder);
    int rc = 0, publics = 0;
    bool found = false;
    struct dirent *entry;
    while ((entry = readdir (folder)) && rc == 0) {
        if (entry->d_name [0] == '.')
            continue;               //  ., .., and a Secret volume's ..data
        size_t size = strlen (entry->d_name);
        char *source = zsys_sprintf ("%s/%s", from, entry->d_name);
        if (size > 4 && streq (entry->d_name + size - 4, ".key")) {
            char *target = zsys_sprintf ("%s/public/%s", to, entry->d_name);
            rc = s_copy (source, target, 0644);
            publics++;
            freen (target);
        }
        else
        if (streq (entry->d_name, "ca.crt") || streq (entry->d_name, tls_cert)) {
            char *target = zsys_sprintf ("%s/%s", to, entry->d_name);
            rc = s_copy (source, target, 0644);
            freen (target);
        }
        else
        if (streq (entry->d_name, tls_key)) {
            char *target = zsys_sprintf ("%s/secret/%s", to, entry->d_name);
            rc = s_copy (source, target, 0600);
            freen (target);
        }
        else
        if (streq (entry->d_name, secret_name)) {
            char *target = zsys_sprintf ("%s/secret/%s", to, entry->d_name);
            rc = s_copy (source, target, 0600);
            found = true;
            freen (target);
        }
        if (rc)
            fprintf (stderr, "herd: --keys-for: cannot copy %s: %s\n", source, strerror (errno));
        freen (source);
    }
    closedir (folder);
    if (rc == 0 && !found) {
        fprintf (stderr, "herd: --keys-for: no %s in %s\n", secret_name, from);
        rc = 1;
    }
    if (rc == 0)
        printf ("herd: keys for %s: %d public, its own secret\n", name, publics);
    freen (secret_name);
    freen (tls_cert);
    freen (tls_key);
    return rc? 1: 0;
}

//  Collects an HTTP body, at most 4 KiB
static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    zchunk_t *body = (zchunk_t *) arg;
    if (zchunk_size (body) + size * count <= 4096)
        zchunk_extend (body, data, size * count);
    return size * count;
}

//  herd --ready NAME / --alive NAME: GET /readyz or /healthz on the
//  server's http endpoint
int
herd_tools_ask_http (herd_config_t *config, const char *server, const char *path)
{
    const char *http = herd_config_server_endpoint (config, server, "http");
    if (!http) {
        fprintf (stderr, "herd: server %s has no http endpoint in the config\n", server);
        return 1;
    }
    //  A wildcard bind is asked on the loopback
    const char *port = strrchr (http, ':') + 1;
    bool wildcard = !strncmp (http, "*:", 2) || !strncmp (http, "0.0.0.0:", 8) || !strncmp (http, "[::]:", 5);
    char *url = wildcard? zsys_sprintf ("http://127.0.0.1:%s%s", port, path)
                        : zsys_sprintf ("http://%s%s", http, path);
    zchunk_t *body = zchunk_new (NULL, 256);
    CURL *curl = curl_easy_init ();
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, body);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    char *text = zchunk_strdup (body);
    int rc = code == CURLE_OK && status == 200? 0: 1;
    if (code != CURLE_OK)
        fprintf (stderr, "herd: %s: %s\n", url, curl_easy_strerror (code));
    else
        fprintf (rc? stderr: stdout, "%s: %ld %s", server, status, text);
    freen (text);
    zchunk_destroy (&body);
    freen (url);
    return rc;
}

//  herd --list: the server names, for scripts (tools/herd-run)
int
herd_tools_list (const char *config_file)
{
    herd_config_t *config = herd_tools_load_config (config_file);
    if (!config)
        return 1;
    zlistx_t *names = herd_config_servers (config);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names))
        printf ("%s\n", name);
    herd_config_destroy (&config);
    return 0;
}

