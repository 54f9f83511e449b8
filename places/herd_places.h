//  places/herd_places.h: the places broker of one server (a zactor). The
//  frontend's DEALER sends it queries on a ROUTER; it hands each to an
//  idle worker of its pool (least-recently-used routing over a second
//  ROUTER), queues the rest up to a bound, and answers busy beyond it.
//  The pool is for a provider that waits (Google's HTTP): the offline
//  provider answers in microseconds from memory, so the server's loop
//  answers it itself (herd_places_asker) and the broker starts no workers
//  for it (a query that reaches it anyway is answered on the spot).
//
//  The server's loop asks through places/herd_places_asker, in the
//  messages of places/herd_places_msg: a QUERY gets an ANSWER (the JSON
//  text as the client gets it), a STATS gets the COUNTS.
//
//  Commands on the pipe:
//      START               -> "OK" or "ERROR <one-line reason>"
//      $TERM

#ifndef HERD_PLACES_H_INCLUDED
#define HERD_PLACES_H_INCLUDED

//  What the actor is started with: config and server are read before
//  zactor_new returns; offline is written at START, so args must last
//  until START has answered
typedef struct {
    herd_config_t *config;      //  Borrowed, must outlive the actor
    const char *server;         //  Our server's name
    herd_offline_t *offline;    //  Out: the offline data when that is the
                                //  provider, read-only, for the server's loop
                                //  to answer from (herd_places_asker); the
                                //  actor owns it and frees it at $TERM
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
