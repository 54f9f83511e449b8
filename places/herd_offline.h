//  places/herd_offline.h: the offline places provider: GeoNames populated
//  places and airports (tools/places-data.py builds the file) behind a
//  spatial grid, searched by great-circle distance. Immutable once loaded,
//  so every worker thread shares one instance without locks.

#ifndef HERD_OFFLINE_H_INCLUDED
#define HERD_OFFLINE_H_INCLUDED

typedef struct _herd_offline_t herd_offline_t;

//  Maps and checks a places file, then builds the index. On failure
//  returns NULL and sets *error_p to a one-line reason. Caller frees it.
herd_offline_t *
    herd_offline_load (const char *path, char **error_p);

void
    herd_offline_destroy (herd_offline_t **self_p);

//  Number of places loaded
size_t
    herd_offline_size (herd_offline_t *self);

//  The places within radius_m of (latitude, longitude), nearest first
//  (ties by index), at most limit of them: writes their indexes, returns
//  how many. Cost follows the places near the point, not the data set.
size_t
    herd_offline_nearest (herd_offline_t *self, double latitude, double longitude,
                          double radius_m, size_t limit, uint32_t *indexes);

//  The same answer by scanning every place: the reference for tests and
//  the baseline of the benchmark
size_t
    herd_offline_nearest_scan (herd_offline_t *self, double latitude, double longitude,
                               double radius_m, size_t limit, uint32_t *indexes);

//  A place's position in degrees
void
    herd_offline_position (herd_offline_t *self, uint32_t index,
                           double *latitude, double *longitude);

//  The nearest places (up to HERD_RESULTS_MAX, enough for any WHATSAT) in
//  Nearby Search shape. Caller owns the result.
json_t *
    herd_offline_search (herd_offline_t *self, const herd_query_t *query);

//  The same answer as the text a client gets (herd_nearby_text of the
//  above, cut to query->max_results), written into out, which it
//  replaces: the server's loop answers WHATSAT with it directly. Returns
//  the text's size.
size_t
    herd_offline_answer (herd_offline_t *self, const herd_query_t *query, zchunk_t *out);

//  Great-circle distance in metres
double
    herd_offline_distance (double latitude1, double longitude1,
                           double latitude2, double longitude2);

void
    herd_offline_test (bool verbose);

#endif
