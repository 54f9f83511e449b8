//  cache/herd_store.h: each server's store of the latest update of every
//  client, newer-wins by client time (docs/PROTOCOL.md section 2),
//  bounded. An update is an AT line, or a forget's GONE line: the
//  client's tombstone, which keeps every older update of it out.

#ifndef HERD_STORE_H_INCLUDED
#define HERD_STORE_H_INCLUDED

typedef struct _herd_store_t herd_store_t;

//  What herd_store_offer did with a line
#define HERD_STORE_STORED    1      //  Newer: stored, and to be flooded
#define HERD_STORE_STALE     0      //  Not newer than what we hold
#define HERD_STORE_INVALID  -1      //  Not an AT line (callers that parse)
#define HERD_STORE_FULL     -2      //  New client, older than every one a full store holds
#define HERD_STORE_FUTURE   -3      //  Refused before the store: client time too far ahead
#define HERD_STORE_UNWRITABLE -4    //  Refused before the store: the journal cannot write
#define HERD_STORE_UNKNOWN_SERVER -5    //  Refused before the store: names no server of the herd
#define HERD_STORE_EXPIRED  -6      //  Refused before the store: older than herd/client_ttl

herd_store_t *
    herd_store_new (size_t max_entries);

void
    herd_store_destroy (herd_store_t **self_p);

//  Offers a parsed AT line (the caller parsed or built it once; the store
//  never parses); keeps a copy if it is newer than the line held for its
//  client: the later client time, exactly; for equal times the bytewise
//  greater line. A full store takes a new client only if its line is
//  newer than the oldest line held, which it replaces. Returns
//  HERD_STORE_STORED, _STALE or _FULL.
int
    herd_store_offer (herd_store_t *self, const herd_at_t *at);

//  Asks the CPU to bring client's bucket of the index into cache, for a
//  lookup a few lines later: a batch of updates for clients all over the
//  table then waits on memory once, not once a line
void
    herd_store_prefetch (herd_store_t *self, herd_field_t client);

//  True if an AT line for client at time (line, whole) would be stored
//  because it is newer than what is held, or nothing is: the compare that
//  comes before any other work on a neighbour's line. Nothing is parsed.
bool
    herd_store_newer (herd_store_t *self, herd_field_t client, herd_field_t time, const char *line, size_t size);

//  Parses line (an AT line, without its line ending) and offers it: for
//  what comes as text (journal replay, tests). HERD_STORE_INVALID if it is
//  not an AT line.
int
    herd_store_offer_text (herd_store_t *self, const char *line, size_t size);

//  The AT line held for client, or NULL (none, or a tombstone); if at is
//  not NULL, fills it with the line's fields. Borrowed until the next offer.
const char *
    herd_store_lookup (herd_store_t *self, const char *client, herd_at_t *at);

//  The update line held for client, AT or GONE, or NULL. Borrowed.
const char *
    herd_store_held (herd_store_t *self, const char *client);

//  Number of clients held, tombstones included
size_t
    herd_store_size (herd_store_t *self);

//  Number of tombstones held (GONE lines)
size_t
    herd_store_tombstones (herd_store_t *self);

//  The end of the slots: where a scan's cursor ends
size_t
    herd_store_slots (herd_store_t *self);

//  Visits at most max_slots slots from *cursor_p (wrapping at the end),
//  and removes each entry judge says to (true): its slot is freed, its
//  line leaves the digest. For expiry, a slice per loop pass. Returns
//  how many it removed.
typedef bool (herd_store_judge_fn) (const char *client, const char *line, size_t size, void *arg);
size_t
    herd_store_sweep (herd_store_t *self, size_t *cursor_p, size_t max_slots,
                      herd_store_judge_fn *judge, void *arg);

//  True once the store holds max_entries clients (it then stays full)
bool
    herd_store_full (herd_store_t *self);

//  Clients that made room for newer ones, and new clients refused for
//  being older than every one held
uint64_t
    herd_store_evicted (herd_store_t *self);

uint64_t
    herd_store_refused (herd_store_t *self);

//  A digest of the whole store, independent of the order things arrived:
//  the XOR of a 64-bit FNV-1a hash of every line held. Equal stores have
//  equal digests; tests and operators compare servers with it.
uint64_t
    herd_store_digest (herd_store_t *self);

//  Bytes of all the lines held (without line endings)
size_t
    herd_store_bytes (herd_store_t *self);

//  Calls fn for every line held; stops early if fn returns -1 (and
//  returns -1). Never allocates, so a forked child may walk.
typedef int (herd_store_line_fn) (const char *line, size_t size, void *arg);
int
    herd_store_walk (herd_store_t *self, herd_store_line_fn *fn, void *arg);

//  Calls fn for at most max_lines lines from *cursor_p (start at 0) and
//  moves the cursor past them; the scan is done when *cursor_p reaches
//  herd_store_slots. The store may change between calls: a client held
//  when the scan started and still held is visited once, with its line as
//  it is then; clients added later may be visited. The lines visited, or
//  -1 if fn stopped it.
int
    herd_store_scan (herd_store_t *self, size_t *cursor_p, size_t max_lines,
                     herd_store_line_fn *fn, void *arg);

void
    herd_store_test (bool verbose);

#endif
