//  core/herd_keys.h: CURVE keys of a server or a monitor, and how every
//  ZeroMQ socket that leaves the process uses them (CZMQ's zcert; the
//  allowed set is checked by zauth, which the node runs).
//
//  Layout under the config's herd/keys folder (herd keygen makes it):
//      public/NAME.key          public certificate of every server and
//                               monitor: the set a server admits
//      secret/NAME.key_secret   secret certificate (mode 0600), only on
//                               the machine that runs NAME
//  A server binds its bus and feed XPUBs, sync ROUTER and admin ROUTER as a CURVE
//  server, and admits only keys in public/. It connects to a neighbour
//  with that neighbour's public key as the server key, so an impostor at
//  the neighbour's address cannot complete the handshake.
//  With herd/security = off every link is plain, and the log says so.

#ifndef HERD_KEYS_H_INCLUDED
#define HERD_KEYS_H_INCLUDED

typedef struct _herd_keys_t herd_keys_t;

//  Loads name's secret certificate, unless security is off. NULL and
//  *error_p (one line naming the file and how to make it) if it is
//  missing or unreadable.
herd_keys_t *
    herd_keys_new (herd_config_t *config, const char *name, char **error_p);

void
    herd_keys_destroy (herd_keys_t **self_p);

//  True unless the config says herd/security = off
bool
    herd_keys_secure (herd_keys_t *self);

//  The folder of public certificates a server admits (for zauth)
const char *
    herd_keys_allowed (herd_keys_t *self);

//  Makes sock a CURVE server with our certificate, its ZAP requests in
//  domain (bus, sync, admin). No-op when security is off.
void
    herd_keys_apply_server (herd_keys_t *self, zsock_t *sock, const char *domain);

//  A certificate from the file path names, as --keygen writes them: a
//  public NAME.key, or a secret NAME.key_secret (which holds both keys).
//  NULL if there is no such file or it holds no certificate.
zcert_t *
    herd_keys_load (const char *path);

//  Makes sock a CURVE client with our certificate that accepts only the
//  server holding server's public key. 0, or -1 and *error_p if that
//  public certificate is missing. No-op when security is off.
int
    herd_keys_apply_client (herd_keys_t *self, zsock_t *sock, const char *server, char **error_p);

//  A connection to a watched socket was accepted (true) or has gone
//  (false): its descriptor, libzmq's (never close it)
typedef void (herd_keys_connection_fn) (int fd, bool accepted, void *arg);

//  Watches a server socket's handshakes (a zmonitor read in loop): every
//  one refused is counted under domain, and logged the first time for
//  each endpoint and reason. With connections, also tells it of each
//  connection accepted and gone (libzmq lets a socket have one monitor:
//  this is it). No-op when security is off and connections is NULL. The
//  monitors are destroyed with keys, which must go before the sockets.
void
    herd_keys_watch (herd_keys_t *self, zloop_t *loop, zsock_t *sock, const char *domain,
                     herd_keys_connection_fn *connections, void *arg);

//  Stops counting sock's handshakes before sock is destroyed, from inside
//  the running loop; a socket watched again in the same domain adds to
//  the same count
void
    herd_keys_unwatch (herd_keys_t *self, zsock_t *sock);

//  Puts the handshakes refused since start, by domain, into stats
void
    herd_keys_stats (herd_keys_t *self, json_t *stats);

//  Writes a new certificate pair for name under config's keys folder,
//  unless one exists. 1 if made, 0 if it existed, -1 and *error_p.
int
    herd_keys_generate (herd_config_t *config, const char *name, char **error_p);

void
    herd_keys_test (bool verbose);

#endif
