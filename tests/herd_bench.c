//  tests/herd_bench.c: speed and memory figures (make bench). Machines here
//  are shared and noisy, so every figure that matters is a ratio measured
//  in this one run: the grid index against a scan of every place.
//
//  herd_bench [PLACES_FILE]

#include "../herd_classes.h"

#define S_QUERIES 1000

static int64_t
s_nanos (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t left = *(const int64_t *) a, right = *(const int64_t *) b;
    return left < right? -1: left > right;
}

static long
s_rss_kib (void)
{
    FILE *file = fopen ("/proc/self/status", "r");
    char line [256];
    long kib = 0;
    while (file && fgets (line, sizeof line, file))
        if (!strncmp (line, "VmRSS:", 6))
            kib = atol (line + 6);
    if (file)
        fclose (file);
    return kib;
}

//  Runs the queries; fills sorted latencies; returns total nanoseconds
static int64_t
s_run (herd_offline_t *offline, double (*points) [2], double radius_m, bool scan,
       int64_t *latencies, size_t *found)
{
    uint32_t indexes [HERD_RESULTS_MAX];
    int64_t total = 0;
    *found = 0;
    for (int query = 0; query < S_QUERIES; query++) {
        int64_t started = s_nanos ();
        *found += scan?
            herd_offline_nearest_scan (offline, points [query][0], points [query][1], radius_m,
                                       HERD_RESULTS_MAX, indexes):
            herd_offline_nearest (offline, points [query][0], points [query][1], radius_m,
                                  HERD_RESULTS_MAX, indexes);
        latencies [query] = s_nanos () - started;
        total += latencies [query];
    }
    qsort (latencies, S_QUERIES, sizeof (int64_t), s_compare);
    return total;
}

int
main (int argc, char *argv [])
{
    const char *path = argc > 1? argv [1]: "data/places.bin";
    zsys_init ();
    long rss_before = s_rss_kib ();
    char *error = NULL;
    int64_t started = s_nanos ();
    herd_offline_t *offline = herd_offline_load (path, &error);
    int64_t first_load = s_nanos () - started;
    if (!offline) {
        fprintf (stderr, "herd_bench: %s\n", error);
        return 1;
    }
    long rss_after = s_rss_kib ();
    int64_t loads [5];
    for (int round = 0; round < 5; round++) {
        started = s_nanos ();
        herd_offline_t *again = herd_offline_load (path, &error);
        loads [round] = s_nanos () - started;
        herd_offline_destroy (&again);
    }
    qsort (loads, 5, sizeof (int64_t), s_compare);
    printf ("offline data: %zu places from %s\n", herd_offline_size (offline), path);
    printf ("  load: %.1f ms first, %.1f ms median of 5 (map, checksum, index)\n",
            first_load / 1e6, loads [2] / 1e6);
    printf ("  resident memory for the data: %.1f MiB (mapped file pages are shared "
            "by every server on the host)\n", (rss_after - rss_before) / 1024.0);

    //  1,000 real coordinates: places of the data set, a fixed sample
    double (*points) [2] = malloc (S_QUERIES * sizeof *points);
    srand (2026);
    for (int query = 0; query < S_QUERIES; query++)
        herd_offline_position (offline, (uint32_t) rand () % herd_offline_size (offline),
                               &points [query][0], &points [query][1]);
    int64_t latencies [S_QUERIES];
    printf ("\nnearby search, %d real coordinates, 20 nearest, one thread:\n", S_QUERIES);
    printf ("  %-7s %12s %10s %10s %12s %10s %10s %9s\n", "radius", "index q/s", "p50 us",
            "p99 us", "scan q/s", "p50 us", "p99 us", "ratio");
    double radii [] = { 1000, 10000, 50000 };
    for (int radius = 0; radius < 3; radius++) {
        size_t found_index, found_scan;
        int64_t index_total = s_run (offline, points, radii [radius], false, latencies, &found_index);
        double index_p50 = latencies [S_QUERIES / 2] / 1e3, index_p99 = latencies [S_QUERIES * 99 / 100] / 1e3;
        int64_t scan_total = s_run (offline, points, radii [radius], true, latencies, &found_scan);
        double scan_p50 = latencies [S_QUERIES / 2] / 1e3, scan_p99 = latencies [S_QUERIES * 99 / 100] / 1e3;
        assert (found_index == found_scan);
        printf ("  %4.0f km %12.0f %10.1f %10.1f %12.0f %10.1f %10.1f %8.0fx\n",
                radii [radius] / 1000, S_QUERIES / (index_total / 1e9), index_p50, index_p99,
                S_QUERIES / (scan_total / 1e9), scan_p50, scan_p99,
                (double) scan_total / index_total);
    }

    //  A whole answer, 10 km, 20 places: the text the loop writes into the
    //  reply (herd_offline_answer) against building the JSON tree and
    //  dumping it (herd_offline_search + herd_nearby_text), the same bytes
    zchunk_t *answer = zchunk_new (NULL, 0);
    int64_t text_total = 0, tree_total = 0;
    for (int query = 0; query < S_QUERIES; query++) {
        herd_query_t question = { points [query][0], points [query][1], 10000, 20 };
        int64_t began = s_nanos ();
        herd_offline_answer (offline, &question, answer);
        text_total += s_nanos () - began;
        began = s_nanos ();
        json_t *response = herd_offline_search (offline, &question);
        char *text = herd_nearby_text (response, question.max_results);
        tree_total += s_nanos () - began;
        assert (strlen (text) == zchunk_size (answer) && !memcmp (text, zchunk_data (answer), zchunk_size (answer)));
        freen (text);
        json_decref (response);
    }
    zchunk_destroy (&answer);
    printf ("\nwhole answer, 10 km, 20 places: as text %.1f us, as a JSON tree dumped %.1f us (%.1fx)\n",
            text_total / 1e3 / S_QUERIES, tree_total / 1e3 / S_QUERIES, (double) tree_total / text_total);

    //  A cache hit: what the broker does to answer from the cache
    herd_placecache_t *cache = herd_placecache_new (64 * 1024 * 1024, 60000);
    char key [128];
    for (int query = 0; query < S_QUERIES; query++) {
        herd_query_t question = { points [query][0], points [query][1], 10000, 20 };
        json_t *response = herd_offline_search (offline, &question);
        herd_placecache_insert (cache, herd_placecache_key (&question, "offline", key, sizeof key),
                                response, 2000);
        json_decref (response);
    }
    int64_t total = 0;
    for (int query = 0; query < S_QUERIES; query++) {
        herd_query_t question = { points [query][0], points [query][1], 10000, 5 };
        started = s_nanos ();
        json_t *cached = herd_placecache_lookup (cache, herd_placecache_key (&question, "offline",
                                                                               key, sizeof key));
        char *text = herd_nearby_text (cached, question.max_results);
        latencies [query] = s_nanos () - started;
        total += latencies [query];
        freen (text);
    }
    qsort (latencies, S_QUERIES, sizeof (int64_t), s_compare);
    printf ("\nplaces cache hit (lookup + JSON text cut to 5): p50 %.1f us, p99 %.1f us, %.0f/s; "
            "%" PRIu64 " hits of %d\n", latencies [S_QUERIES / 2] / 1e3,
            latencies [S_QUERIES * 99 / 100] / 1e3, S_QUERIES / (total / 1e9),
            herd_placecache_hits (cache), S_QUERIES);
    herd_placecache_destroy (&cache);
    free (points);
    herd_offline_destroy (&offline);
    return 0;
}
