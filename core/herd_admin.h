//  core/herd_admin.h: a client of a server's admin endpoint, where STATE
//  and STATS are asked and JSON comes back (docs/PROTOCOL.md section 5).
//  herd --state and --stats, herd-monitor --top and --web ask over TCP
//  with a monitor's key; the HTTP thread asks its own node over inproc.
//  A question that went unanswered takes its socket with it, so a late
//  answer can never pass for the next one.

#ifndef HERD_ADMIN_H_INCLUDED
#define HERD_ADMIN_H_INCLUDED

typedef struct _herd_admin_t herd_admin_t;

//  Asks server's admin endpoint in config, with keys (borrowed, must
//  outlive it; the server must admit them). NULL and *error_p if the
//  config gives the server no admin endpoint or its public key is missing.
herd_admin_t *
    herd_admin_new (herd_config_t *config, herd_keys_t *keys, const char *server, char **error_p);

//  Asks endpoint with no keys: a node's own inproc endpoint
herd_admin_t *
    herd_admin_new_endpoint (const char *endpoint);

void
    herd_admin_destroy (herd_admin_t **self_p);

//  Sends a request without waiting: 0, or -1 if the link cannot take it
int
    herd_admin_send (herd_admin_t *self, const char *request);

//  The next answer, waiting up to msecs (0: only one already there), as
//  JSON; NULL if none came (or it was not JSON). Caller owns it.
json_t *
    herd_admin_recv (herd_admin_t *self, int msecs);

//  Sends request and waits up to msecs for its answer. NULL if none came:
//  the socket is then made anew.
json_t *
    herd_admin_ask (herd_admin_t *self, const char *request, int msecs);

//  Makes the socket anew, dropping any answer still to come
void
    herd_admin_reset (herd_admin_t *self);

//  The socket, to wait on in a poller (it changes with a reset)
zsock_t *
    herd_admin_sock (herd_admin_t *self);

const char *
    herd_admin_endpoint (herd_admin_t *self);

void
    herd_admin_test (bool verbose);

#endif
