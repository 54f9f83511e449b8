//  herd_tools.h: herd's command-line tools, apart from the server's main.
//  Each prints what it found, or one line on stderr, and returns the
//  process's exit status.

#ifndef HERD_TOOLS_H_INCLUDED
#define HERD_TOOLS_H_INCLUDED

//  The config, or NULL after one line on stderr saying what is wrong
herd_config_t *
    herd_tools_load_config (const char *config_file);

//  herd --keygen [NAME ...]: certificates for the names given, or for
//  every server of the config and one monitor; keys that exist are kept.
//  A server also gets its TLS certificate from the herd's CA, made on
//  first use (<keys>/ca.crt, its key <keys>/secret/ca.pem).
int
    herd_tools_keygen (const char *config_file, int count, char *names []);

//  herd --client-cert ID / --client-cert-prefix PREFIX --out DIR: a client
//  certificate and key signed by the herd's CA (DIR/ID.crt, DIR/ID.key),
//  and the CA's certificate beside them (DIR/ca.crt)
int
    herd_tools_client_cert (const char *config_file, const char *id, bool prefix, const char *out, int days);

//  herd --revoke CERT: adds it to the herd's revocation list
int
    herd_tools_revoke (const char *config_file, const char *cert);

//  herd --keys-for NAME FROM TO: one server's key folder from all keys
int
    herd_tools_keys_for (const char *name, const char *from, const char *to);

//  herd --list: the server names, for scripts
int
    herd_tools_list (const char *config_file);

//  herd --state / --stats NAME: the admin endpoint's JSON answer
int
    herd_tools_ask_admin (herd_config_t *config, const char *server, const char *request, const char *cert);

//  herd --clients NAME, herd --dump FILE NAME: every line the server holds
//  (AT, and GONE for forgotten clients), a page at a time over the admin
//  link, to stdout or into path (0600, renamed when whole); the counts
//  after
int
    herd_tools_clients (herd_config_t *config, const char *server, const char *cert, const char *path);

//  herd --ready / --alive NAME: GET path on the server's http endpoint
int
    herd_tools_ask_http (herd_config_t *config, const char *server, const char *path);

#endif
