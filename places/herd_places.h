//  places/herd_places.h: the places broker of one server (a zactor). The
//  frontend's DEALER sends it queries on a ROUTER; it hands each to an
//  idle worker of its pool (least-recently-used routing over a second
//  ROUTER), queues the rest up to a bound, and answers busy beyond it.
//
//  Frontend to broker:  [request id, opaque][herd_query_t]
//  Broker to frontend:  [request id][response JSON text, as clients get it]
//  Frontend to broker:  [request id]["STATS"] -> [request id][counters JSON]
//
//  Commands on the pipe:
//      START               -> "OK" or "ERROR <one-line reason>"
//      $TERM

#ifndef HERD_PLACES_H_INCLUDED
#define HERD_PLACES_H_INCLUDED

//  What the actor is started with; read before zactor_new returns
typedef struct {
    herd_config_t *config;      //  Borrowed, must outlive the actor
    const char *server;         //  Our server's name
} herd_places_args_t;

//  zactor_new (herd_places_actor, &args)
void
    herd_places_actor (zsock_t *pipe, void *args);

//  The inproc endpoint of a server's broker, for the frontend's DEALER.
//  Caller frees.
char *
    herd_places_endpoint (const char *server);

void
    herd_places_test (bool verbose);

#endif
