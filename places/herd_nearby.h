//  places/herd_nearby.h: the Google Places Nearby Search response shape
//  that every provider answers in (docs/PROTOCOL.md section 1), and the query
//  the frontend asks.

#ifndef HERD_NEARBY_H_INCLUDED
#define HERD_NEARBY_H_INCLUDED

//  What a WHATSAT asks the places pool
typedef struct {
    double latitude;            //  Degrees, the client's stored position
    double longitude;
    double radius_m;            //  Metres, > 0
    uint32_t max_results;       //  1..20; applied after any cache
} herd_query_t;

//  {"html_attributions":[], "results":[], "status":"UNKNOWN_ERROR",
//   "error_message": <message>}. Caller owns the result.
json_t *
    herd_nearby_error (const char *format, ...) CHECK_PRINTF (1);

//  A response holding results (takes ownership of the array): status OK,
//  or ZERO_RESULTS when it is empty. Caller owns the result.
json_t *
    herd_nearby_response (json_t *results);

//  The response as clients get it: results cut to max_results, no empty
//  line inside and no trailing newline. Caller frees.
char *
    herd_nearby_text (json_t *response, size_t max_results);

//  Status of a response ("OK", ...), and its result count
const char *
    herd_nearby_status (json_t *response);
size_t
    herd_nearby_count (json_t *response);

void
    herd_nearby_test (bool verbose);

#endif
