//  places/herd_placecache.c: TTL + LRU cache of places answers.
//  A zhashx finds an entry by key; a zlistx keeps entries from least to
//  most recently used, and each entry holds its list handle, so a touch
//  and an eviction are O(1).

#include "places/herd_places_layer.h"

//  Bytes an entry costs beyond its answer's text: key, structs, hash slot
#define S_ENTRY_OVERHEAD 256

typedef struct {
    char *key;                  //  Owned copy
    json_t *response;           //  One reference, ours
    size_t bytes;               //  What it counts against the bound
    int64_t expires;            //  zclock_mono time
    void *handle;               //  Our place in the LRU list
} s_entry_t;

struct _herd_placecache_t {
    zhashx_t *entries;          //  key -> s_entry_t (owned)
    zlistx_t *recency;          //  s_entry_t, least recent first (borrowed)
    size_t max_bytes;           //  Bound on bytes
    size_t bytes;               //  Now held
    int64_t ttl;                //  msecs an answer stays fresh
    uint64_t hits, misses, evictions;
};

static void
s_entry_destroy (void **item_p)
{
    s_entry_t *entry = (s_entry_t *) *item_p;
    if (entry) {
        json_decref (entry->response);
        freen (entry->key);
        freen (entry);
        *item_p = NULL;
    }
}

herd_placecache_t *
herd_placecache_new (size_t max_bytes, int64_t ttl_msecs)
{
    herd_placecache_t *self = (herd_placecache_t *) zmalloc (sizeof (herd_placecache_t));
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_destroy);
    self->recency = zlistx_new ();
    self->max_bytes = max_bytes;
    self->ttl = ttl_msecs;
    return self;
}

void
herd_placecache_destroy (herd_placecache_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_placecache_t *self = *self_p;
        zlistx_destroy (&self->recency);
        zhashx_destroy (&self->entries);
        freen (self);
        *self_p = NULL;
    }
}

const char *
herd_placecache_key (const herd_query_t *query, const char *provider,
                     char *buffer, size_t buffer_size)
{
    //  Rounded to 0.001 degree; "-0.000" and "0.000" are the same place
    double latitude = round (query->latitude * 1000) / 1000;
    double longitude = round (query->longitude * 1000) / 1000;
    snprintf (buffer, buffer_size, "%s %.3f %.3f %.0f", provider,
              latitude == 0? 0: latitude, longitude == 0? 0: longitude, round (query->radius_m));
    return buffer;
}

static void
s_remove (herd_placecache_t *self, s_entry_t *entry)
{
    zlistx_delete (self->recency, entry->handle);
    self->bytes -= entry->bytes;
    zhashx_delete (self->entries, entry->key);     //  Destroys entry
}

json_t *
herd_placecache_lookup (herd_placecache_t *self, const char *key)
{
    assert (self);
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, key);
    if (entry && entry->expires <= zclock_mono ()) {
        s_remove (self, entry);
        entry = NULL;
    }
    if (!entry) {
        self->misses++;
        return NULL;
    }
    self->hits++;
    zlistx_move_end (self->recency, entry->handle);
    return entry->response;
}

bool
herd_placecache_insert (herd_placecache_t *self, const char *key, json_t *response, size_t size)
{
    assert (self);
    const char *status = herd_nearby_status (response);
    size_t bytes = size + strlen (key) + S_ENTRY_OVERHEAD;
    if ((!streq (status, "OK") && !streq (status, "ZERO_RESULTS")) || bytes > self->max_bytes
    ||  self->ttl <= 0)
        return false;
    s_entry_t *old = (s_entry_t *) zhashx_lookup (self->entries, key);
    if (old)
        s_remove (self, old);
    while (self->bytes + bytes > self->max_bytes) {
        s_entry_t *oldest = (s_entry_t *) zlistx_first (self->recency);
        assert (oldest);
        s_remove (self, oldest);
        self->evictions++;
    }
    s_entry_t *entry = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    entry->key = strdup (key);
    entry->response = json_incref (response);
    entry->bytes = bytes;
    entry->expires = zclock_mono () + self->ttl;
    entry->handle = zlistx_add_end (self->recency, entry);
    zhashx_insert (self->entries, key, entry);
    self->bytes += bytes;
    return true;
}

size_t
herd_placecache_size (herd_placecache_t *self)
{
    return zhashx_size (self->entries);
}

size_t
herd_placecache_bytes (herd_placecache_t *self)
{
    return self->bytes;
}

uint64_t
herd_placecache_hits (herd_placecache_t *self)
{
    return self->hits;
}

uint64_t
herd_placecache_misses (herd_placecache_t *self)
{
    return self->misses;
}

uint64_t
herd_placecache_evictions (herd_placecache_t *self)
{
    return self->evictions;
}

//  --------------------------------------------------------------------------
//  Selftest

void
herd_placecache_test (bool verbose)
{
    printf (" * herd_placecache: ");
    if (verbose)
        printf ("\n");
    char key [128], other [128];
    herd_query_t query = { 34.06893, -118.445127, 10000, 5 };
    herd_placecache_key (&query, "offline", key, sizeof key);
    assert (streq (key, "offline 34.069 -118.445 10000"));
    //  Within the rounding: the same key; another radius: another key
    herd_query_t near = { 34.0691, -118.4452, 10000, 20 };
    assert (streq (herd_placecache_key (&near, "offline", other, sizeof other), key));
    near.radius_m = 10001;
    assert (!streq (herd_placecache_key (&near, "offline", other, sizeof other), key));

    herd_placecache_t *cache = herd_placecache_new (1024 * 1024, 100);
    json_t *answer = herd_nearby_response (json_array ());
    json_t *error = herd_nearby_error ("down");
    assert (!herd_placecache_lookup (cache, key));
    assert (!herd_placecache_insert (cache, key, error, 100));      //  Errors aren't kept
    assert (herd_placecache_insert (cache, key, answer, 100));
    assert (herd_placecache_lookup (cache, key) == answer);
    assert (herd_placecache_hits (cache) == 1 && herd_placecache_misses (cache) == 1);
    zclock_sleep (150);                                              //  Past the TTL
    assert (!herd_placecache_lookup (cache, key));
    assert (herd_placecache_size (cache) == 0 && herd_placecache_bytes (cache) == 0);
    herd_placecache_destroy (&cache);

    //  100,000 distinct queries stay within the bound; the recent survive
    size_t bound = 200 * 1024;
    cache = herd_placecache_new (bound, 60000);
    for (int index = 0; index < 100000; index++) {
        herd_query_t distinct = { index / 1000.0, 0, 1000, 1 };
        herd_placecache_key (&distinct, "offline", key, sizeof key);
        assert (herd_placecache_insert (cache, key, answer, 300));
        assert (herd_placecache_bytes (cache) <= bound);
    }
    size_t entries = herd_placecache_size (cache);
    assert (entries > 100 && entries < 1000);
    assert (herd_placecache_evictions (cache) == 100000 - entries);
    herd_query_t last = { 99999 / 1000.0, 0, 1000, 1 };
    assert (herd_placecache_lookup (cache, herd_placecache_key (&last, "offline", key, sizeof key)));
    herd_query_t early = { 1 / 1000.0, 0, 1000, 1 };
    assert (!herd_placecache_lookup (cache, herd_placecache_key (&early, "offline", key, sizeof key)));
    if (verbose)
        printf ("    %zu entries, %zu bytes, %" PRIu64 " evictions\n", entries,
                herd_placecache_bytes (cache), herd_placecache_evictions (cache));
    herd_placecache_destroy (&cache);

    //  Least recently used goes first: fill a small cache to its bound,
    //  touch the oldest entry, add one more: the second oldest goes, the
    //  touched one stays (a FIFO would evict the touched one)
    cache = herd_placecache_new (8 * 1024, 60000);
    int count = 0;
    while (herd_placecache_evictions (cache) == 0) {
        herd_query_t distinct = { count++ / 1000.0, 0, 1000, 1 };
        herd_placecache_insert (cache, herd_placecache_key (&distinct, "offline", key, sizeof key),
                                answer, 300);
    }
    assert (count > 3);
    //  Entry 0 went with that first eviction; 1 is now the oldest, 2 next
    herd_query_t oldest = { 1 / 1000.0, 0, 1000, 1 };
    herd_query_t second = { 2 / 1000.0, 0, 1000, 1 };
    herd_placecache_key (&oldest, "offline", key, sizeof key);
    herd_placecache_key (&second, "offline", other, sizeof other);
    assert (herd_placecache_lookup (cache, key));           //  Touched: most recent now
    herd_query_t more = { count / 1000.0, 0, 1000, 1 };
    char extra [128];
    herd_placecache_insert (cache, herd_placecache_key (&more, "offline", extra, sizeof extra), answer, 300);
    assert (herd_placecache_evictions (cache) == 2);
    assert (herd_placecache_lookup (cache, key));           //  Survived
    assert (!herd_placecache_lookup (cache, other));        //  Evicted instead
    herd_placecache_destroy (&cache);
    json_decref (answer);
    json_decref (error);
    printf ("OK\n");
}
