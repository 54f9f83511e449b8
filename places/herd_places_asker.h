//  places/herd_places_asker.h: how a server's loop asks its places broker
//  (places/herd_places): a WHATSAT's query, or the broker's counters for
//  STATS, each under a request id of the asker's choosing; the answer
//  comes back to the asker's handler, in the loop, under that id. One
//  DEALER per server, shared by the frontend and the node.

#ifndef HERD_PLACES_ASKER_H_INCLUDED
#define HERD_PLACES_ASKER_H_INCLUDED

typedef struct _herd_places_asker_t herd_places_asker_t;

//  An answer to request: JSON text, size bytes, not terminated; borrowed
//  for the call
typedef void (herd_places_answer_fn) (uint64_t request, const char *text, size_t size, void *arg);

//  Connects to server's broker, read in loop. max_waiting bounds the
//  queries it holds on their way (its socket's queue).
herd_places_asker_t *
    herd_places_asker_new (zloop_t *loop, const char *server, size_t max_waiting);

void
    herd_places_asker_destroy (herd_places_asker_t **self_p);

//  Where WHATSAT answers go
void
    herd_places_asker_on_answer (herd_places_asker_t *self, herd_places_answer_fn *handler, void *arg);

//  Where the broker's counters go
void
    herd_places_asker_on_counts (herd_places_asker_t *self, herd_places_answer_fn *handler, void *arg);

//  From now on, answers queries from offline itself, in the caller's
//  loop (borrowed, read-only; it must outlive the asker): the broker's
//  thread and its pool are for providers that wait
void
    herd_places_asker_answer_from (herd_places_asker_t *self, herd_offline_t *offline);

//  The answer to query as the client gets it, made now: the text (size
//  bytes, not terminated, valid until the next call), or NULL if the
//  answer must come from the broker (herd_places_asker_query)
const char *
    herd_places_asker_answer_now (herd_places_asker_t *self, const herd_query_t *query, size_t *size_p);

//  Adds the queries answered here to the broker's count in stats (the
//  places.requests counter of STATS)
void
    herd_places_asker_stats (herd_places_asker_t *self, json_t *stats);

//  Asks for the places around a query, never waiting. 0, or -1 if the
//  broker is not taking queries (its queue is full).
int
    herd_places_asker_query (herd_places_asker_t *self, uint64_t request, const herd_query_t *query);

//  Asks for the broker's counters, never waiting. 0 or -1.
int
    herd_places_asker_ask_stats (herd_places_asker_t *self, uint64_t request);

void
    herd_places_asker_test (bool verbose);

#endif
