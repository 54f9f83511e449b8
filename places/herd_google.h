//  places/herd_google.h: the Google Places provider over libcurl. Speaks
//  the Places API (New) searchNearby (what new keys get) or the legacy
//  Nearby Search, and always answers in the Nearby Search shape.
//  One instance per worker thread: it holds a curl handle (not shareable).

#ifndef HERD_GOOGLE_H_INCLUDED
#define HERD_GOOGLE_H_INCLUDED

typedef struct _herd_google_t herd_google_t;

//  api is "new" or "legacy"; url the API's base URL, or "" for Google's
//  own; key the API key; timeout_ms bounds the whole request.
herd_google_t *
    herd_google_new (const char *api, const char *url, const char *key, long timeout_ms, const char *fields);

void
    herd_google_destroy (herd_google_t **self_p);

//  Asks the API; never fails: errors, bad JSON and timeouts come back as
//  the UNKNOWN_ERROR shape. Caller owns the result.
json_t *
    herd_google_search (herd_google_t *self, const herd_query_t *query);

//  Converts a searchNearby (New) response body to Nearby Search shape.
//  Caller owns the result; UNKNOWN_ERROR shape if the body is not one.
json_t *
    herd_google_convert_new (json_t *body);

void
    herd_google_test (bool verbose);

#endif
