//  core/herd_config.h: the herd's configuration, loaded from one ZPL file
//  (rfc.zeromq.org/spec:4, read with CZMQ's zconfig) and checked whole:
//  every number in range, every endpoint well formed, every neighbour a
//  known server, every link listed at both ends.

#ifndef HERD_CONFIG_H_INCLUDED
#define HERD_CONFIG_H_INCLUDED

typedef struct _herd_config_t herd_config_t;

//  Loads and checks a config file. On failure returns NULL and sets
//  *error_p to a one-line message naming the file and what is wrong.
//  Caller frees *error_p.
herd_config_t *
    herd_config_load (const char *filename, char **error_p);

//  Same, from text in memory (tests); name is used in messages
herd_config_t *
    herd_config_load_text (const char *text, const char *name, char **error_p);

void
    herd_config_destroy (herd_config_t **self_p);

//  True if the herd has a server of that name
bool
    herd_config_has_server (herd_config_t *self, const char *server);

//  Names of all servers, in file order. Borrowed.
zlistx_t *
    herd_config_servers (herd_config_t *self);

//  Where a server listens for clients, as HOST:PORT; NULL if its plain
//  port is off (client = off: clients over TLS only). Borrowed.
const char *
    herd_config_client_bind (herd_config_t *self, const char *server);

//  The endpoint a server binds its bus (XPUB) socket to. Borrowed.
const char *
    herd_config_bus_bind (herd_config_t *self, const char *server);

//  The endpoint other servers connect to for a server's bus. Borrowed.
const char *
    herd_config_bus_endpoint (herd_config_t *self, const char *server);

//  An optional endpoint of a server: "sync" (where neighbours ask it for
//  catch-up), "sync_bind" (what it binds for that; defaults to sync),
//  "feed" (where monitors subscribe to its updates), "feed_bind" (what it
//  binds for that; defaults to feed), "admin" (state and stats requests),
//  "http", or "client_tls" (HOST:PORT where clients connect over TLS). NULL if not configured. Borrowed.
const char *
    herd_config_server_endpoint (herd_config_t *self, const char *server, const char *key);

//  A file of the TLS client port for server: "ca", "cert", "key" or
//  "crl", as the tls section says ({server} in it stands for the name),
//  else where herd --keygen puts it: <keys>/ca.crt, <keys>/NAME.crt,
//  <keys>/secret/NAME.pem, <keys>/ca.crl; or "ca_key", the herd CA's key,
//  which no server reads and only herd --keygen puts anywhere:
//  <keys>/secret/ca.pem. Caller frees.
char *
    herd_config_tls_file (herd_config_t *self, const char *server, const char *what);

//  What other (the same file, loaded again) says differently: the paths
//  of the settings ("herd/client_ttl") and of the servers' keys
//  ("servers/Bailey/bus"; "servers" if the names differ) whose values
//  differ. A list of strings; caller destroys it.
zlistx_t *
    herd_config_changes (herd_config_t *self, herd_config_t *other);

//  A server's neighbours (names). Borrowed.
zlistx_t *
    herd_config_neighbours (herd_config_t *self, const char *server);

//  A number from the herd or places sections, e.g. "herd/max_line";
//  ranges were checked at load time. Asserts the key is known.
long
    herd_config_number (herd_config_t *self, const char *path);

//  A string setting, e.g. "places/provider". Borrowed. Asserts the key.
const char *
    herd_config_string (herd_config_t *self, const char *path);

//  Name of the file it was loaded from. Borrowed.
const char *
    herd_config_filename (herd_config_t *self);

void
    herd_config_test (bool verbose);

#endif
