//  places/herd_placecache.h: the places cache. Answers keyed by the query's
//  location rounded to 0.001 degree (at most 111 m apart), its radius in
//  whole metres, and the provider; each kept for a TTL, all together within
//  a byte bound, the least recently used evicted first. Only answers worth
//  repeating are kept: OK and ZERO_RESULTS, never UNKNOWN_ERROR. Entries
//  hold a provider's whole answer (up to 20 places), so one entry serves
//  every max-results.

#ifndef HERD_PLACECACHE_H_INCLUDED
#define HERD_PLACECACHE_H_INCLUDED

typedef struct _herd_placecache_t herd_placecache_t;

herd_placecache_t *
    herd_placecache_new (size_t max_bytes, int64_t ttl_msecs);

void
    herd_placecache_destroy (herd_placecache_t **self_p);

//  The cache key of a query to a provider, into buffer (>= 96 bytes)
const char *
    herd_placecache_key (const herd_query_t *query, const char *provider,
                         char *buffer, size_t buffer_size);

//  The cached answer, or NULL if none or expired. Borrowed until the next
//  insert. Counts a hit or a miss.
json_t *
    herd_placecache_lookup (herd_placecache_t *self, const char *key);

//  Keeps an answer (takes a reference; the caller keeps its own) whose text
//  is size bytes, evicting the least recently used to stay in bound.
//  Returns false if it is not cacheable or is larger than the whole bound.
bool
    herd_placecache_insert (herd_placecache_t *self, const char *key,
                            json_t *response, size_t size);

//  Counters and size, for logs and tests
size_t  herd_placecache_size (herd_placecache_t *self);
size_t  herd_placecache_bytes (herd_placecache_t *self);
uint64_t herd_placecache_hits (herd_placecache_t *self);
uint64_t herd_placecache_misses (herd_placecache_t *self);
uint64_t herd_placecache_evictions (herd_placecache_t *self);

void
    herd_placecache_test (bool verbose);

#endif
