//  frontend/herd_listener.h: where a server takes client connections: the
//  listening sockets in the loop (the plain port and the TLS port), the bound on connections from one
//  address, and a pause when the process runs out of descriptors. Each
//  connection it admits goes to a handler (the client table), which may
//  still refuse it.

#ifndef HERD_LISTENER_H_INCLUDED
#define HERD_LISTENER_H_INCLUDED

typedef struct _herd_listener_t herd_listener_t;

//  A new connection: its socket (non-blocking), its host alone, its
//  address ("host:port") for the log, and the tag of the socket that took
//  it. 0 if taken (the socket is the taker's
//  now, and the listener counts it against its address until
//  herd_listener_release), -1 if refused (the listener closes it).
typedef int (herd_listener_admit_fn) (int fd, const char *host, const char *address, void *tag, void *arg);

//  A listener in loop that admits through admit. max_per_address:
//  connections open from one address at most, on all its sockets
//  together; 0 for no bound.
herd_listener_t *
    herd_listener_new (zloop_t *loop, size_t max_per_address, herd_listener_admit_fn *admit, void *arg);

//  Listens on endpoint (HOST:PORT; setting names where the config says so,
//  for errors) too, handing tag with each connection it takes there (two
//  sockets at most). The socket's number for herd_listener_port, or -1
//  and *error_p (one line) if it cannot listen.
int
    herd_listener_bind (herd_listener_t *self, const char *endpoint, const char *setting, void *tag,
                        char **error_p);

void
    herd_listener_destroy (herd_listener_t **self_p);

//  A new bound on connections from one address (SIGHUP); 0 for none
void
    herd_listener_set_max_per_address (herd_listener_t *self, size_t max_per_address);

//  A connection the handler took from host has closed
void
    herd_listener_release (herd_listener_t *self, const char *host);

//  The port a socket listens on (the config may say 0: any free one), 0
//  if there is no such socket
int
    herd_listener_port (herd_listener_t *self, int socket);

//  Connections refused at the per-address bound, since start
uint64_t
    herd_listener_refused_per_address (herd_listener_t *self);

void
    herd_listener_test (bool verbose);

#endif
