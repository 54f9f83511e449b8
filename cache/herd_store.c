//  cache/herd_store.c: client id -> latest update line (AT, or a forget's
//  GONE: its tombstone), every client in a slot of its own: a slot number
//  is a cursor that stays valid while the store changes (incremental
//  snapshots and sweeps scan by slot). A client removed (expired, or a
//  tombstone past its time) leaves its slot empty for the next new client.
//
//  The index is an open-addressing table of its own, as Redis's dict is
//  the heart of Redis: linear probing over a power of two of 8-byte
//  buckets, at most half full, each holding the client id's hash (XXH3)
//  and its slot; an id's bytes are compared only when the hashes match,
//  and a removal shifts its run back (no tombstones to sweep). It doubles
//  as Redis's dict does, a few buckets a write. Buckets cost 16 bytes a
//  client at most, where a chained table costs a malloc'd item and a
//  pointer for each.
//
//  A full store keeps the max_entries newest clients by the order every
//  server applies to updates (client time, then the line's bytes): a new
//  client newer than the oldest held takes its place (and its slot), an
//  older one is refused. Every server applies the same rule to what the
//  herd floods, so full servers still end with the same clients. The
//  oldest is found in a min-heap, made the first time the store fills.

#include "cache/herd_cache_layer.h"
#include <malloc.h>
#include <sys/mman.h>
#include <xxhash.h>

//  Buckets a new store starts with
#define S_BUCKETS_MIN   1024

//  One client's latest update, in one block as small as it can be (a
//  million clients must fit in RAM): no parsed fields, no hash, no copy of
//  the id: the line holds it, and the entry says where. A newer line that
//  fits the block (malloc_usable_size) is copied in place; one that does
//  not gets a new block in the same slot (the index holds slots, so it
//  does not change). Fields are parsed again when asked for (lookup), and
//  the time field, the line's last, is found by its space.
typedef struct {
    uint32_t slot;              //  Its index in slots
    uint32_t size;              //  Length of the line
    uint32_t heap_index;        //  Its place in the heap, once there is one
    uint16_t client_offset;     //  Where the client id starts in the line
    uint16_t client_size;       //  ... and its length
    char data [];               //  "<AT line>\0"
} s_entry_t;

//  One bucket of the index: a client's id hash and its slot + 1 (0: empty)
typedef struct {
    uint32_t hash;
    uint32_t slot;
} s_bucket_t;

struct _herd_store_t {
    s_bucket_t *buckets;        //  The index: client id -> slot (owned)
    size_t bucket_mask;         //  Buckets - 1, a power of two less one
    s_bucket_t *old_buckets;    //  The table it grew from, while being moved (owned)
    size_t old_mask;
    size_t old_next;            //  Its next bucket to move
    size_t count;               //  Clients held
    s_entry_t **slots;          //  Every entry, by slot (owned); NULL: a free slot
    size_t slots_capacity;
    size_t slot_count;          //  Slots in use or freed: the cursors' end
    uint32_t *free_slots;       //  Slots freed by removals, for new clients
    size_t free_count;
    size_t tombstones;          //  Entries that are GONE lines
    size_t bytes;               //  Sum of the lines' sizes
    uint64_t digest;            //  XOR of every line's XXH3 64
    size_t max_entries;         //  Hard cap bounds memory
    bool warned_full;           //  Log "full" once
    s_entry_t **heap;           //  Once full: every entry, the oldest first
    uint64_t evicted;           //  Clients that made room for newer ones
    uint64_t refused;           //  New clients older than every one held
};

static char *
s_line (s_entry_t *entry)
{
    return entry->data;
}

static const char *
s_client (s_entry_t *entry)
{
    return entry->data + entry->client_offset;
}

static inline uint64_t
s_line_hash (const char *line, size_t size)
{
    return XXH3_64bits (line, size);
}

static inline uint32_t
s_id_hash (const char *id, size_t size)
{
    return (uint32_t) XXH3_64bits (id, size);
}

//  In a table being moved out of: a bucket whose entry went to the new
//  table, or was removed meanwhile. Probes go past it, as past a full one
#define S_MOVED         UINT32_MAX
//  Buckets of the old table moved a write: the old table is empty long
//  before the new one fills, and no write waits on a whole table
#define S_MOVE_STEP     4

//  The bucket of table that holds id, with *entry_p its entry; or, if
//  none does, the empty bucket where it would go, with *entry_p NULL
static size_t
s_probe (herd_store_t *self, s_bucket_t *table, size_t mask, const char *id, size_t size, uint32_t hash,
         s_entry_t **entry_p)
{
    for (size_t index = hash & mask;; index = (index + 1) & mask) {
        s_bucket_t *bucket = &table [index];
        if (!bucket->slot) {
            *entry_p = NULL;
            return index;
        }
        if (bucket->hash == hash && bucket->slot != S_MOVED) {
            s_entry_t *entry = self->slots [bucket->slot - 1];
            if (entry->client_size == size && !memcmp (s_client (entry), id, size)) {
                *entry_p = entry;
                return index;
            }
        }
    }
}

//  The entry of id, in the table or, while one is being moved, the old
//  one; *hash_p, if given, gets id's hash for the s_index that may follow
static s_entry_t *
s_find (herd_store_t *self, const char *id, size_t size, uint32_t *hash_p)
{
    s_entry_t *entry;
    uint32_t hash = s_id_hash (id, size);
    if (hash_p)
        *hash_p = hash;
    s_probe (self, self->buckets, self->bucket_mask, id, size, hash, &entry);
    if (!entry && self->old_buckets)
        s_probe (self, self->old_buckets, self->old_mask, id, size, hash, &entry);
    return entry;
}

#define S_HUGE_PAGE     (2 * 1024 * 1024)

//  Zeroed buckets. A table past 2 MiB is fresh anonymous memory on a huge
//  page boundary, asking for huge pages: every update lands on a random
//  bucket, and with 4 KiB pages each would cost a TLB miss on top of the
//  cache miss; and its pages are zero as they come, touched by the writes
//  that use them, where zeroing 32 MiB at once would hold the loop
static s_bucket_t *
s_buckets_new (size_t count)
{
    size_t size = count * sizeof (s_bucket_t);
    if (size < S_HUGE_PAGE) {
        s_bucket_t *buckets = (s_bucket_t *) calloc (count, sizeof (s_bucket_t));
        assert (buckets);
        return buckets;
    }
    size_t span = size + S_HUGE_PAGE;
    char *map = (char *) mmap (NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert (map != MAP_FAILED);
    char *start = (char *) (((uintptr_t) map + S_HUGE_PAGE - 1) & ~(uintptr_t) (S_HUGE_PAGE - 1));
    if (start > map)
        munmap (map, (size_t) (start - map));
    if (map + span > start + size)
        munmap (start + size, (size_t) (map + span - (start + size)));
    madvise (start, size, MADV_HUGEPAGE);           //  A hint: fine if refused
    return (s_bucket_t *) start;
}

static void
s_buckets_free (s_bucket_t **buckets_p, size_t mask)
{
    if (!*buckets_p)
        return;
    size_t size = (mask + 1) * sizeof (s_bucket_t);
    if (size < S_HUGE_PAGE)
        free (*buckets_p);
    else
        munmap (*buckets_p, size);
    *buckets_p = NULL;
}

//  Moves up to steps buckets of the old table into the table, by the hash
//  each holds (no id is read), and frees the old table once all are moved
static void
s_move (herd_store_t *self, size_t steps)
{
    for (; self->old_buckets && steps; steps--) {
        if (self->old_next > self->old_mask) {
            s_buckets_free (&self->old_buckets, self->old_mask);
            break;
        }
        s_bucket_t *bucket = &self->old_buckets [self->old_next++];
        if (!bucket->slot || bucket->slot == S_MOVED)
            continue;
        size_t target = bucket->hash & self->bucket_mask;
        while (self->buckets [target].slot)
            target = (target + 1) & self->bucket_mask;
        self->buckets [target] = *bucket;
        bucket->slot = S_MOVED;
    }
}

//  Twice the buckets. As Redis's dict does, the move is spread over the
//  writes that follow (S_MOVE_STEP buckets each): moving 2 million buckets
//  at once held the loop for 17 ms
static void
s_grow (herd_store_t *self)
{
    s_move (self, SIZE_MAX);            //  A move still under way ends first
    self->old_buckets = self->buckets;
    self->old_mask = self->bucket_mask;
    self->old_next = 0;
    self->buckets = s_buckets_new ((self->bucket_mask + 1) * 2);
    self->bucket_mask = self->bucket_mask * 2 + 1;
}

//  Indexes entry (held in its slot, its id not yet in the index), whose
//  id hashes to hash
static void
s_index (herd_store_t *self, s_entry_t *entry, uint32_t hash)
{
    if ((self->count + 1) * 2 > self->bucket_mask + 1)
        s_grow (self);
    s_move (self, S_MOVE_STEP);
    s_entry_t *found;
    size_t index = s_probe (self, self->buckets, self->bucket_mask, s_client (entry), entry->client_size,
                            hash, &found);
    assert (!found);
    self->buckets [index].hash = hash;
    self->buckets [index].slot = entry->slot + 1;
    self->count++;
}

//  Takes entry's id out of the index. In the table the run after its
//  bucket shifts back over the hole, so every id stays reachable from its
//  home bucket; in an old table being moved it leaves a moved mark, so
//  the move (which goes forward) never meets an id shifted behind it
static void
s_unindex (herd_store_t *self, s_entry_t *entry)
{
    s_entry_t *found;
    uint32_t hash = s_id_hash (s_client (entry), entry->client_size);
    size_t mask = self->bucket_mask;
    size_t hole = s_probe (self, self->buckets, mask, s_client (entry), entry->client_size, hash, &found);
    if (found) {
        for (size_t next = (hole + 1) & mask; self->buckets [next].slot; next = (next + 1) & mask) {
            size_t home = self->buckets [next].hash & mask;
            //  It stays if its home lies cyclically in (hole, next]
            bool stays = hole <= next? home > hole && home <= next: home > hole || home <= next;
            if (!stays) {
                self->buckets [hole] = self->buckets [next];
                hole = next;
            }
        }
        self->buckets [hole].slot = 0;
    }
    else {
        hole = s_probe (self, self->old_buckets, self->old_mask, s_client (entry), entry->client_size,
                        hash, &found);
        self->old_buckets [hole].slot = S_MOVED;
    }
    assert (found == entry);
    self->count--;
    s_move (self, S_MOVE_STEP);
}

herd_store_t *
herd_store_new (size_t max_entries)
{
    assert (max_entries <= UINT32_MAX);
    herd_store_t *self = (herd_store_t *) zmalloc (sizeof (herd_store_t));
    self->buckets = s_buckets_new (S_BUCKETS_MIN);
    self->bucket_mask = S_BUCKETS_MIN - 1;
    self->max_entries = max_entries;
    return self;
}

void
herd_store_destroy (herd_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_store_t *self = *self_p;
        for (size_t slot = 0; slot < self->slot_count; slot++)
            freen (self->slots [slot]);
        s_buckets_free (&self->buckets, self->bucket_mask);
        s_buckets_free (&self->old_buckets, self->old_mask);
        freen (self->slots);
        freen (self->free_slots);
        freen (self->heap);
        freen (self);
        *self_p = NULL;
    }
}

//  The total order every server applies alike: the later client time,
//  exactly; for equal times the bytewise greater line
static bool
s_newer (const char *line, size_t size, herd_field_t time, s_entry_t *held)
{
    const char *held_line = s_line (held);
    return herd_protocol_at_order (line, size, time, held_line, held->size,
                                   herd_protocol_at_time (held_line, held->size)) > 0;
}

//  The same order between two entries held: true if a is older than b
static bool
s_older (s_entry_t *a, s_entry_t *b)
{
    const char *a_line = s_line (a), *b_line = s_line (b);
    return herd_protocol_at_order (a_line, a->size, herd_protocol_at_time (a_line, a->size),
                                   b_line, b->size, herd_protocol_at_time (b_line, b->size)) < 0;
}

//  The heap of a full store: heap [0] is the oldest entry held

static void
s_heap_place (herd_store_t *self, size_t index, s_entry_t *entry)
{
    self->heap [index] = entry;
    entry->heap_index = (uint32_t) index;
}

static void
s_heap_down (herd_store_t *self, size_t index)
{
    size_t size = self->count;
    s_entry_t *entry = self->heap [index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= size)
            break;
        if (child + 1 < size && s_older (self->heap [child + 1], self->heap [child]))
            child++;
        if (!s_older (self->heap [child], entry))
            break;
        s_heap_place (self, index, self->heap [child]);
        index = child;
    }
    s_heap_place (self, index, entry);
}

static void
s_heap_up (herd_store_t *self, size_t index)
{
    s_entry_t *entry = self->heap [index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!s_older (entry, self->heap [parent]))
            break;
        s_heap_place (self, index, self->heap [parent]);
        index = parent;
    }
    s_heap_place (self, index, entry);
}

//  Made the first time the store fills, then kept as clients come and go
//  (it never holds more than max_entries)
static void
s_heap_make (herd_store_t *self)
{
    size_t held = 0;
    self->heap = (s_entry_t **) malloc ((self->max_entries? self->max_entries: 1) * sizeof (s_entry_t *));
    assert (self->heap);
    for (size_t slot = 0; slot < self->slot_count; slot++)
        if (self->slots [slot])
            s_heap_place (self, held++, self->slots [slot]);
    assert (held == self->count);
    for (size_t index = held / 2; index-- > 0;)
        s_heap_down (self, index);
}

static bool
s_is_gone (const char *line)
{
    return line [0] == 'G';         //  "GONE ...", never "AT ..."
}

void
herd_store_prefetch (herd_store_t *self, herd_field_t client)
{
    assert (self);
    uint32_t hash = s_id_hash (client.start, client.size);
    __builtin_prefetch (&self->buckets [hash & self->bucket_mask]);
    if (self->old_buckets)
        __builtin_prefetch (&self->old_buckets [hash & self->old_mask]);
}

bool
herd_store_newer (herd_store_t *self, herd_field_t client, herd_field_t time, const char *line, size_t size)
{
    assert (self && line);
    if (client.size > HERD_CLIENT_ID_MAX)
        return false;
    s_entry_t *held = s_find (self, client.start, client.size, NULL);
    return !held || s_newer (line, size, time, held);
}

int
herd_store_offer (herd_store_t *self, const herd_at_t *at)
{
    assert (self);
    assert (at);
    const char *line = at->line.start;
    size_t size = at->line.size;
    //  Where the id sits in the line fits the entry's 16 bits in any line
    //  a server makes; a stranger one is no update
    if ((size_t) (at->client.start - line) > UINT16_MAX)
        return HERD_STORE_INVALID;
    uint32_t hash;
    s_entry_t *held = s_find (self, at->client.start, at->client.size, &hash);
    bool same_client = held != NULL;
    if (held) {
        const char *held_line = s_line (held);
        if (!s_newer (line, size, at->time, held))
            return HERD_STORE_STALE;
        self->digest ^= s_line_hash (held_line, held->size);
        self->bytes -= held->size;
        self->tombstones -= s_is_gone (held_line);
    }
    else
    if (self->count >= self->max_entries) {
        if (!self->warned_full)
            zsys_warning ("store: full at %zu clients (herd/max_stored); from now on a new client "
                          "takes the place of the one with the oldest update, if its own is newer",
                          self->max_entries);
        self->warned_full = true;
        if (!self->heap)
            s_heap_make (self);
        s_entry_t *oldest = self->heap [0];
        if (!s_newer (line, size, at->time, oldest)) {
            self->refused++;
            return HERD_STORE_FULL;
        }
        //  The oldest goes; the new client takes its slot and heap place
        self->evicted++;
        held = oldest;
        self->digest ^= s_line_hash (s_line (oldest), oldest->size);
        self->bytes -= oldest->size;
        self->tombstones -= s_is_gone (s_line (oldest));
    }
    self->digest ^= s_line_hash (line, size);
    self->bytes += size;
    self->tombstones += at->gone;
    uint16_t client_offset = (uint16_t) (at->client.start - line);
    if (same_client && malloc_usable_size (held) >= sizeof (s_entry_t) + size + 1) {
        //  In place: the slot stays as it is; the id may sit elsewhere in
        //  the newer line (another server's name or skew before it)
        memcpy (held->data, line, size);
        held->data [size] = 0;
        held->size = (uint32_t) size;
        held->client_offset = client_offset;
        if (self->heap)
            s_heap_down (self, held->heap_index);      //  Newer: it moves away from the top
        return HERD_STORE_STORED;
    }
    s_entry_t *entry = (s_entry_t *) malloc (sizeof (s_entry_t) + size + 1);
    assert (entry);
    bool replaces = held != NULL;       //  A block, same client or evicted
    memcpy (entry->data, line, size);
    entry->data [size] = 0;
    entry->size = (uint32_t) size;
    entry->client_offset = client_offset;
    entry->client_size = (uint16_t) at->client.size;
    if (held) {
        //  The same slot: for the same client the index stays as it is;
        //  a client that takes an evicted one's place takes its bucket out
        entry->slot = held->slot;
        entry->heap_index = held->heap_index;
        if (!same_client)
            s_unindex (self, held);
        freen (held);
    }
    else
    if (self->free_count)
        entry->slot = self->free_slots [--self->free_count];
    else {
        entry->slot = (uint32_t) self->slot_count++;
        if (entry->slot == self->slots_capacity) {
            self->slots_capacity = self->slots_capacity? self->slots_capacity * 2: 1024;
            self->slots = (s_entry_t **) realloc (self->slots, self->slots_capacity * sizeof (s_entry_t *));
            assert (self->slots);
        }
    }
    self->slots [entry->slot] = entry;
    if (!same_client)
        s_index (self, entry, hash);
    if (self->heap && replaces) {
        s_heap_place (self, entry->heap_index, entry);
        s_heap_down (self, entry->heap_index);
    }
    else
    if (self->heap) {
        //  A new client in a store that had room again (after removals)
        s_heap_place (self, self->count - 1, entry);
        s_heap_up (self, entry->heap_index);
    }
    return HERD_STORE_STORED;
}

int
herd_store_offer_text (herd_store_t *self, const char *line, size_t size)
{
    herd_at_t at;
    if (herd_protocol_parse_at (line, size, &at))
        return HERD_STORE_INVALID;
    return herd_store_offer (self, &at);
}

const char *
herd_store_held (herd_store_t *self, const char *client)
{
    assert (self && client);
    s_entry_t *entry = s_find (self, client, strlen (client), NULL);
    return entry? s_line (entry): NULL;
}

//  Takes an entry out: its slot freed for the next new client, the heap
//  mended; the block freed
static void
s_remove (herd_store_t *self, s_entry_t *entry)
{
    const char *line = s_line (entry);
    self->digest ^= s_line_hash (line, entry->size);
    self->bytes -= entry->size;
    self->tombstones -= s_is_gone (line);
    size_t last = self->count - 1;
    size_t index = entry->heap_index;
    s_unindex (self, entry);            //  While its slot still finds it
    self->slots [entry->slot] = NULL;
    if (entry->slot + 1 == self->slot_count)
        self->slot_count--;
    else {
        if ((self->free_count & (self->free_count - 1)) == 0 || !self->free_slots) {
            size_t capacity = self->free_count? self->free_count * 2: 64;
            self->free_slots = (uint32_t *) realloc (self->free_slots, capacity * sizeof (uint32_t));
            assert (self->free_slots);
        }
        self->free_slots [self->free_count++] = entry->slot;
    }
    freen (entry);
    if (self->heap && index != last) {
        s_entry_t *moved = self->heap [last];
        s_heap_place (self, index, moved);
        s_heap_down (self, index);
        s_heap_up (self, moved->heap_index);
    }
}

size_t
herd_store_sweep (herd_store_t *self, size_t *cursor_p, size_t max_slots,
                  herd_store_judge_fn *judge, void *arg)
{
    assert (self && cursor_p && judge);
    size_t removed = 0;
    for (size_t step = 0; step < max_slots && self->slot_count; step++) {
        if (*cursor_p >= self->slot_count)
            *cursor_p = 0;
        s_entry_t *entry = self->slots [(*cursor_p)++];
        if (!entry)
            continue;
        char client [HERD_CLIENT_ID_MAX + 1];
        memcpy (client, s_client (entry), entry->client_size);
        client [entry->client_size] = 0;
        if (judge (client, s_line (entry), entry->size, arg)) {
            s_remove (self, entry);
            removed++;
        }
    }
    return removed;
}

size_t
herd_store_tombstones (herd_store_t *self)
{
    assert (self);
    return self->tombstones;
}

size_t
herd_store_slots (herd_store_t *self)
{
    assert (self);
    return self->slot_count;
}

const char *
herd_store_lookup (herd_store_t *self, const char *client, herd_at_t *at)
{
    assert (self);
    s_entry_t *entry = s_find (self, client, strlen (client), NULL);
    if (!entry || s_is_gone (s_line (entry)))
        return NULL;            //  Forgotten: its tombstone is no place
    const char *line = s_line (entry);
    if (at) {
        //  Stored lines were parsed when they came: this cannot fail
        int rc = herd_protocol_parse_at (line, entry->size, at);
        assert (rc == 0);
    }
    return line;
}

bool
herd_store_full (herd_store_t *self)
{
    assert (self);
    return self->count >= self->max_entries;
}

uint64_t
herd_store_evicted (herd_store_t *self)
{
    assert (self);
    return self->evicted;
}

uint64_t
herd_store_refused (herd_store_t *self)
{
    assert (self);
    return self->refused;
}

size_t
herd_store_size (herd_store_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
herd_store_digest (herd_store_t *self)
{
    assert (self);
    return self->digest;
}

size_t
herd_store_bytes (herd_store_t *self)
{
    assert (self);
    return self->bytes;
}

int
herd_store_walk (herd_store_t *self, herd_store_line_fn *fn, void *arg)
{
    assert (self);
    size_t cursor = 0;
    while (cursor < self->slot_count)
        if (herd_store_scan (self, &cursor, SIZE_MAX, fn, arg) == -1)
            return -1;
    return 0;
}

int
herd_store_scan (herd_store_t *self, size_t *cursor_p, size_t max_lines,
                 herd_store_line_fn *fn, void *arg)
{
    assert (self && cursor_p);
    //  A cursor taken earlier is still a place in the slots; free slots
    //  are passed over
    int visited = 0;
    while (*cursor_p < self->slot_count && (size_t) visited < max_lines) {
        s_entry_t *entry = self->slots [(*cursor_p)++];
        if (!entry)
            continue;
        visited++;
        if (fn (s_line (entry), entry->size, arg) == -1)
            return -1;
    }
    return visited;
}

//  --------------------------------------------------------------------------
//  Selftest

static int
s_offer (herd_store_t *self, const char *line)
{
    return herd_store_offer_text (self, line, strlen (line));
}

static int
s_count (const char *line, size_t size, void *arg)
{
    (void) line;
    (void) size;
    (*(size_t *) arg)++;
    return 0;
}

static bool
s_judge_gone (const char *client, const char *line, size_t size, void *arg)
{
    (void) client;
    (void) size;
    (void) arg;
    return line [0] == 'G';
}

//  The random test's judge: removes the clients marked doomed, and says
//  so to the oracle
typedef struct {
    zhashx_t *doomed;
    zhashx_t *oracle;
} s_doom_t;

static bool
s_judge_doomed (const char *client, const char *line, size_t size, void *arg)
{
    (void) line;
    (void) size;
    s_doom_t *doom = (s_doom_t *) arg;
    if (!zhashx_lookup (doom->doomed, client))
        return false;
    zhashx_delete (doom->doomed, client);
    zhashx_delete (doom->oracle, client);
    return true;
}

static bool
s_judge_six (const char *client, const char *line, size_t size, void *arg)
{
    (void) client;
    (void) arg;
    return line [size - 1] == '6';
}

void
herd_store_test (bool verbose)
{
    printf (" * herd_store: ");
    if (verbose)
        printf ("\n");
    herd_store_t *store = herd_store_new (2);
    assert (s_offer (store, "AT A +0.1 kiwi +34-118 100.5") == HERD_STORE_STORED);
    assert (s_offer (store, "AT B +0.1 kiwi +35-118 100.4") == HERD_STORE_STALE);
    assert (s_offer (store, "AT A +0.1 kiwi +34-118 100.5") == HERD_STORE_STALE);
    //  Equal time: the bytewise greater line wins, so all servers agree
    assert (s_offer (store, "AT B +0.1 kiwi +34-118 100.50") == HERD_STORE_STORED);
    assert (s_offer (store, "AT A +0.1 kiwi +34-118 100.5") == HERD_STORE_STALE);
    herd_at_t at;
    const char *line = herd_store_lookup (store, "kiwi", &at);
    assert (streq (line, "AT B +0.1 kiwi +34-118 100.50"));
    assert (at.server.start == line + 3 && at.server.size == 1);
    double latitude, longitude;
    herd_protocol_at_position (&at, &latitude, &longitude);
    assert (latitude == 34 && longitude == -118);
    //  The compare alone, before any parse: what a neighbour's line meets first
    herd_field_t client = { "kiwi", 4 }, earlier = { "99", 2 }, later = { "101", 3 }, same = { "100.50", 6 };
    assert (!herd_store_newer (store, client, earlier, "AT Z +0.1 kiwi +1+1 99", 22));
    assert (herd_store_newer (store, client, later, "AT Z +0.1 kiwi +1+1 101", 23));
    assert (!herd_store_newer (store, client, same, "AT A +0.1 kiwi +34-118 100.50", 29));
    herd_field_t stranger = { "nobody", 6 };
    assert (herd_store_newer (store, stranger, earlier, "AT Z +0.1 nobody +1+1 99", 24));
    assert (s_offer (store, "AT C -5.0 kiwi +1+2 100.500000001") == HERD_STORE_STORED);
    assert (herd_store_lookup (store, "kiwi", &at));
    herd_protocol_at_position (&at, &latitude, &longitude);
    assert (latitude == 1 && longitude == 2);
    assert (!herd_store_lookup (store, "nobody", NULL));
    assert (s_offer (store, "IAMAT kiwi +1+2 200") == HERD_STORE_INVALID);
    assert (s_offer (store, "AT C -5.0 kiwi 1+2 200") == HERD_STORE_INVALID);
    assert (s_offer (store, "AT C +0.0 apple +1+2 1") == HERD_STORE_STORED);
    assert (herd_store_full (store));
    //  Full: a new client older than every one held is refused...
    assert (s_offer (store, "AT C +0.0 pear +1+2 0.5") == HERD_STORE_FULL);
    assert (herd_store_refused (store) == 1);
    assert (s_offer (store, "AT C +0.0 apple +1+2 2") == HERD_STORE_STORED);
    assert (herd_store_size (store) == 2);
    //  ... and a newer one takes the oldest one's place (apple, at 2)
    assert (s_offer (store, "AT C +0.0 pear +1+2 50") == HERD_STORE_STORED);
    assert (herd_store_size (store) == 2 && herd_store_evicted (store) == 1);
    assert (!herd_store_lookup (store, "apple", NULL) && herd_store_lookup (store, "pear", NULL));
    assert (herd_store_lookup (store, "kiwi", NULL));
    //  The digest depends on what is held, not on the order it came in
    herd_store_t *other = herd_store_new (10);
    assert (s_offer (other, "AT C +0.0 pear +1+2 50") == HERD_STORE_STORED);
    assert (herd_store_digest (other) != herd_store_digest (store));
    assert (s_offer (other, "AT A +0.1 kiwi +34-118 100.5") == HERD_STORE_STORED);
    assert (s_offer (other, "AT C -5.0 kiwi +1+2 100.500000001") == HERD_STORE_STORED);
    assert (herd_store_digest (other) == herd_store_digest (store));
    //  A scan by slots sees every client once, in slices, while the
    //  store changes under it; bytes follow replacements
    size_t cursor = 0, seen = 0;
    assert (herd_store_scan (other, &cursor, 1, s_count, &seen) == 1);
    assert (cursor == 1 && seen == 1);
    assert (s_offer (other, "AT C -5.0 kiwi +1+2 100.6") == HERD_STORE_STORED);
    assert (s_offer (other, "AT C +0.0 fig +1+2 1") == HERD_STORE_STORED);
    assert (herd_store_scan (other, &cursor, 10, s_count, &seen) == 2);
    assert (cursor == 3 && seen == 3);
    assert (herd_store_bytes (other) == strlen ("AT C +0.0 pear +1+2 50") + strlen ("AT C -5.0 kiwi +1+2 100.6")
                                      + strlen ("AT C +0.0 fig +1+2 1"));
    herd_store_destroy (&other);

    //  However updates come, a full store ends with the newest clients:
    //  two stores fed the same updates in different orders agree
    herd_store_t *forward = herd_store_new (50), *backward = herd_store_new (50);
    for (int round = 0; round < 2000; round++) {
        char line [80];
        int client = (round * 7919) % 300, time = (round * 104729) % 100000;
        int size = snprintf (line, sizeof line, "AT S +0.0 c%d +1+1 %d", client, time);
        herd_store_offer_text (forward, line, (size_t) size);
        client = ((1999 - round) * 7919) % 300;
        time = ((1999 - round) * 104729) % 100000;
        size = snprintf (line, sizeof line, "AT S +0.0 c%d +1+1 %d", client, time);
        herd_store_offer_text (backward, line, (size_t) size);
    }
    assert (herd_store_size (forward) == 50 && herd_store_size (backward) == 50);
    assert (herd_store_digest (forward) == herd_store_digest (backward));
    assert (herd_store_evicted (forward) > 0 && herd_store_evicted (backward) > 0);
    herd_store_destroy (&forward);
    herd_store_destroy (&backward);

    //  Newer lines go in place when they fit the block, into a new block
    //  when not: either way one client, one slot, the digest of what is held
    herd_store_t *growing = herd_store_new (10);
    assert (s_offer (growing, "AT A +0.1 fig +1+1 1") == HERD_STORE_STORED);
    assert (s_offer (growing, "AT A +0.1 fig +1+1 2") == HERD_STORE_STORED);
    char long_line [300];
    snprintf (long_line, sizeof long_line, "AT A-much-longer-server-name +0.000000001 fig "
              "+1.000000000000000000000000000000000000000000000-1.0000000000000000000000000000000 3");
    assert (s_offer (growing, long_line) == HERD_STORE_STORED);
    assert (s_offer (growing, "AT A +0.1 fig +1+1 4") == HERD_STORE_STORED);
    assert (s_offer (growing, long_line) == HERD_STORE_STALE);
    assert (herd_store_size (growing) == 1);
    assert (streq (herd_store_lookup (growing, "fig", &at), "AT A +0.1 fig +1+1 4"));
    herd_protocol_at_position (&at, &latitude, &longitude);
    assert (at.time.size == 1 && at.time.start [0] == '4' && latitude == 1);
    herd_store_t *fresh = herd_store_new (10);
    s_offer (fresh, "AT A +0.1 fig +1+1 4");
    assert (herd_store_digest (fresh) == herd_store_digest (growing));
    assert (herd_store_bytes (growing) == strlen ("AT A +0.1 fig +1+1 4"));
    herd_store_destroy (&fresh);
    herd_store_destroy (&growing);

    //  A forget's GONE line is a tombstone: it hides the client, keeps
    //  older updates out (its own time included), yields to newer ones
    herd_store_t *forgetful = herd_store_new (3);
    assert (s_offer (forgetful, "AT A +0.1 kiwi +1+1 10") == HERD_STORE_STORED);
    uint64_t with_kiwi = herd_store_digest (forgetful);
    assert (s_offer (forgetful, "GONE B +0.1 kiwi 10") == HERD_STORE_STORED);
    assert (!herd_store_lookup (forgetful, "kiwi", NULL) && herd_store_tombstones (forgetful) == 1);
    assert (streq (herd_store_held (forgetful, "kiwi"), "GONE B +0.1 kiwi 10"));
    assert (herd_store_digest (forgetful) != with_kiwi);
    assert (s_offer (forgetful, "AT A +0.1 kiwi +1+1 10") == HERD_STORE_STALE);
    assert (s_offer (forgetful, "AT Z +0.1 kiwi +1+1 9.99") == HERD_STORE_STALE);
    assert (s_offer (forgetful, "GONE C +0.1 kiwi 5") == HERD_STORE_STALE);
    assert (s_offer (forgetful, "AT A +0.1 kiwi +2+2 10.000000001") == HERD_STORE_STORED);
    assert (herd_store_lookup (forgetful, "kiwi", NULL) && herd_store_tombstones (forgetful) == 0);
    //  A forget of a client never held still leaves its tombstone
    assert (s_offer (forgetful, "GONE B +0.1 stranger 7") == HERD_STORE_STORED);
    assert (herd_store_tombstones (forgetful) == 1 && herd_store_size (forgetful) == 2);

    //  Removal by a sweep: the slot goes to the next new client, the digest
    //  and the heap of a full store follow
    assert (s_offer (forgetful, "AT A +0.1 apple +1+1 3") == HERD_STORE_STORED);
    assert (herd_store_full (forgetful));
    assert (s_offer (forgetful, "AT A +0.1 pear +1+1 1") == HERD_STORE_FULL);
    size_t sweep = 0;
    assert (herd_store_sweep (forgetful, &sweep, 10, s_judge_gone, NULL) == 1);
    assert (herd_store_size (forgetful) == 2 && herd_store_tombstones (forgetful) == 0);
    assert (!herd_store_held (forgetful, "stranger") && herd_store_slots (forgetful) == 3);
    assert (s_offer (forgetful, "AT A +0.1 pear +1+1 1") == HERD_STORE_STORED);     //  Room again
    assert (herd_store_slots (forgetful) == 3);                                       //  Its slot reused
    //  Full again: the heap knows pear (at 1) is the oldest
    assert (s_offer (forgetful, "AT A +0.1 fig +1+1 2") == HERD_STORE_STORED);
    assert (!herd_store_held (forgetful, "pear") && herd_store_evicted (forgetful) >= 1);
    herd_store_t *again = herd_store_new (3);
    s_offer (again, "AT A +0.1 kiwi +2+2 10.000000001");
    s_offer (again, "AT A +0.1 apple +1+1 3");
    s_offer (again, "AT A +0.1 fig +1+1 2");
    assert (herd_store_digest (again) == herd_store_digest (forgetful));
    size_t lines = 0;
    assert (herd_store_walk (forgetful, s_count, &lines) == 0 && lines == 3);
    herd_store_destroy (&again);
    herd_store_destroy (&forgetful);

    //  The index through growth and removals: 30,000 clients (the table
    //  doubles five times), every third swept out (runs shift back over
    //  the holes), the rest all found, the swept ones gone, then back
    herd_store_t *many = herd_store_new (100000);
    char id [32], text [96];
    for (int number = 0; number < 30000; number++) {
        snprintf (text, sizeof text, "AT A +0.1 m%d +1+1 %d", number, number % 3? 5: 6);
        assert (s_offer (many, text) == HERD_STORE_STORED);
    }
    assert (herd_store_size (many) == 30000);
    size_t cursor_many = 0;
    herd_store_sweep (many, &cursor_many, 30000, s_judge_six, NULL);
    assert (herd_store_size (many) == 20000);
    for (int number = 0; number < 30000; number++) {
        snprintf (id, sizeof id, "m%d", number);
        assert ((herd_store_held (many, id) != NULL) == (number % 3 != 0));
    }
    for (int number = 0; number < 30000; number += 3) {
        snprintf (text, sizeof text, "AT A +0.1 m%d +1+1 7", number);
        assert (s_offer (many, text) == HERD_STORE_STORED);
    }
    assert (herd_store_size (many) == 30000 && herd_store_slots (many) == 30000);
    for (int number = 0; number < 30000; number++) {
        snprintf (id, sizeof id, "m%d", number);
        assert (herd_store_held (many, id));
    }
    herd_store_destroy (&many);

    //  Every client found after every write while the table doubles and
    //  its buckets move a few at a time: 3,000 clients, three doublings
    herd_store_t *moving = herd_store_new (10000);
    for (int number = 0; number < 3000; number++) {
        snprintf (text, sizeof text, "AT A +0.1 v%d +1+1 1", number);
        assert (s_offer (moving, text) == HERD_STORE_STORED);
        for (int earlier = 0; earlier <= number; earlier++) {
            snprintf (id, sizeof id, "v%d", earlier);
            assert (herd_store_held (moving, id));
        }
    }
    herd_store_destroy (&moving);
    //  Past 2 MiB of buckets (mapped memory, huge pages asked for): every
    //  one of 300,000 clients still found
    moving = herd_store_new (300000);
    for (int number = 0; number < 300000; number++) {
        snprintf (text, sizeof text, "AT A +0.1 w%d +1+1 1", number);
        assert (s_offer (moving, text) == HERD_STORE_STORED);
    }
    for (int number = 0; number < 300000; number++) {
        snprintf (id, sizeof id, "w%d", number);
        assert (herd_store_held (moving, id));
    }
    herd_store_destroy (&moving);

    //  Random writes and sweeps against a reference table, through seven
    //  doublings, each moved a few buckets a write while removals and new
    //  clients land in both tables: after every stretch the store holds
    //  exactly the clients the reference does
    herd_store_t *mixed = herd_store_new (1000000);
    s_doom_t doom = { zhashx_new (), zhashx_new () };
    size_t mixed_cursor = 0;
    srand (34);
    for (int round = 0; round < 300000; round++) {
        snprintf (id, sizeof id, "r%d", rand () % 60000);
        assert ((herd_store_held (mixed, id) != NULL) == (zhashx_lookup (doom.oracle, id) != NULL));
        if (rand () % 5) {
            snprintf (text, sizeof text, "AT A +0.1 %s +1+1 %d", id, round + 1);
            assert (s_offer (mixed, text) == HERD_STORE_STORED);
            zhashx_insert (doom.oracle, id, (void *) 1);
            zhashx_delete (doom.doomed, id);
        }
        else
        if (zhashx_lookup (doom.oracle, id))
            zhashx_insert (doom.doomed, id, (void *) 1);
        if (round % 97 == 0)
            herd_store_sweep (mixed, &mixed_cursor, 1 + (size_t) rand () % 3000, s_judge_doomed, &doom);
        if (round % 50000 == 49999) {
            assert (herd_store_size (mixed) == zhashx_size (doom.oracle));
            for (int number = 0; number < 60000; number++) {
                snprintf (id, sizeof id, "r%d", number);
                assert ((herd_store_held (mixed, id) != NULL) == (zhashx_lookup (doom.oracle, id) != NULL));
            }
        }
    }
    zhashx_destroy (&doom.doomed);
    zhashx_destroy (&doom.oracle);
    herd_store_destroy (&mixed);
    herd_store_destroy (&store);
    herd_store_destroy (&store);
    assert (store == NULL);
    printf ("OK\n");
}
