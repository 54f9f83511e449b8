//  places/herd_worker.h: one places worker thread (a zactor). It connects
//  a DEALER to the places broker's worker ROUTER, says READY, then answers
//  one query at a time with its provider: blocking calls live here, never
//  in the frontend's loop.
//
//  Broker to worker:  a QUERY under a job id
//  Worker to broker:  READY once, then a RESULT per job: the response
//  itself, never written as text here (places/herd_places_msg)

#ifndef HERD_WORKER_H_INCLUDED
#define HERD_WORKER_H_INCLUDED

//  What a worker needs; copied before zactor_new returns, so it may live
//  on the caller's stack
typedef struct {
    const char *endpoint;       //  The broker's worker ROUTER
    const char *provider;       //  "google" or "none" (offline needs no worker)
    const char *google_api;     //  "new" or "legacy"
    const char *google_url;     //  Base URL, "" for Google's
    const char *google_key;     //  API key
    long timeout_ms;            //  Provider request bound
    const char *google_fields;  //  The Places API (New) field mask
} herd_worker_settings_t;

//  zactor_new (herd_worker_actor, &settings)
void
    herd_worker_actor (zsock_t *pipe, void *args);

void
    herd_worker_test (bool verbose);

#endif
