//  frontend/herd_frontend.h: the server's event loop (a zactor). It owns
//  every client connection (non-blocking TCP, one epoll set inside one
//  zloop: no thread per connection), the client store, and the bus that
//  floods the store's updates, so IAMAT, WHATSAT and bus updates meet in
//  one thread with no locks. WHATSAT's place lookups go to the places
//  broker and come back as messages; the loop never blocks on them.
//
//  Commands on the pipe:
//      START   -> "OK" or "ERROR <one-line reason>" (e.g. port in use)
//      $TERM

#ifndef HERD_FRONTEND_H_INCLUDED
#define HERD_FRONTEND_H_INCLUDED

//  What the actor is started with; read before zactor_new returns
typedef struct {
    herd_config_t *config;      //  Borrowed, must outlive the actor
    const char *server;         //  Our server's name
} herd_frontend_args_t;

//  zactor_new (herd_frontend_actor, &args)
void
    herd_frontend_actor (zsock_t *pipe, void *args);

void
    herd_frontend_test (bool verbose);

#endif
