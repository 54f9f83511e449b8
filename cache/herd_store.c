//  cache/herd_store.c: client id -> latest AT line, in a zhashx, and
//  every client in a slot of its own, in the order they came: clients are
//  never removed, so a slot number is a cursor that stays valid while the
//  store changes (incremental snapshots and rewrites scan by slot).

#include "herd_classes.h"

//  One client's latest update: the line and its parsed fields, which
//  point into line, allocated as one block
typedef struct {
    herd_at_t at;               //  Fields of line
    size_t size;                //  Length of line
    uint64_t hash;              //  FNV-1a 64 of line, for the digest
    size_t slot;                //  Its index in slots
    char line [];               //  The AT line, null-terminated
} s_entry_t;

struct _herd_store_t {
    zhashx_t *entries;          //  client id -> s_entry_t (owned)
    s_entry_t **slots;          //  Every entry, by arrival of its client
    size_t slots_capacity;
    size_t bytes;               //  Sum of the lines' sizes
    uint64_t digest;            //  XOR of every line's hash
    size_t max_entries;         //  Hard cap bounds memory
    bool warned_full;           //  Log "full" once, re-armed below 90%
};

static void
s_entry_destroy (void **entry_p)
{
    freen (*entry_p);
}

herd_store_t *
herd_store_new (size_t max_entries)
{
    herd_store_t *self = (herd_store_t *) zmalloc (sizeof (herd_store_t));
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_destroy);
    self->max_entries = max_entries;
    return self;
}

void
herd_store_destroy (herd_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_store_t *self = *self_p;
        zhashx_destroy (&self->entries);
        freen (self->slots);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_store_offer (herd_store_t *self, const herd_at_t *offered)
{
    assert (self);
    assert (offered);
    herd_at_t at = *offered;
    const char *line = at.line.start;
    size_t size = at.line.size;
    char client [HERD_CLIENT_ID_MAX + 1];
    memcpy (client, at.client.start, at.client.size);
    client [at.client.size] = 0;

    s_entry_t *held = (s_entry_t *) zhashx_lookup (self->entries, client);
    if (held) {
        int order = herd_protocol_time_compare (at.time, held->at.time);
        if (order == 0) {
            //  Same client time: the bytewise greater line wins everywhere
            size_t common = size < held->size? size: held->size;
            order = memcmp (line, held->line, common);
            if (order == 0)
                order = size < held->size? -1: size > held->size? 1: 0;
        }
        if (order <= 0)
            return HERD_STORE_STALE;
    }
    else
    if (zhashx_size (self->entries) >= self->max_entries) {
        if (!self->warned_full)
            zsys_warning ("store: full at %zu clients, new clients are not stored (herd/max_stored)",
                          self->max_entries);
        self->warned_full = true;
        return HERD_STORE_FULL;
    }
    s_entry_t *entry = (s_entry_t *) malloc (sizeof (s_entry_t) + size + 1);
    assert (entry);
    memcpy (entry->line, line, size);
    entry->line [size] = 0;
    entry->size = size;
    entry->hash = herd_fnv64 (line, size, HERD_FNV64_SEED);
    self->digest ^= entry->hash ^ (held? held->hash: 0);
    //  Rebase the parsed fields onto our copy
    entry->at = at;
    if (held) {
        entry->slot = held->slot;
        self->bytes -= held->size;
    }
    else {
        entry->slot = zhashx_size (self->entries);
        if (entry->slot == self->slots_capacity) {
            self->slots_capacity = self->slots_capacity? self->slots_capacity * 2: 1024;
            self->slots = (s_entry_t **) realloc (self->slots, self->slots_capacity * sizeof (s_entry_t *));
            assert (self->slots);
        }
    }
    self->slots [entry->slot] = entry;
    self->bytes += size;
    herd_field_t *fields [] = { &entry->at.line, &entry->at.server, &entry->at.skew, &entry->at.client,
                                &entry->at.coordinates, &entry->at.time };
    for (size_t index = 0; index < 6; index++)
        fields [index]->start = entry->line + (fields [index]->start - line);
    zhashx_update (self->entries, client, entry);
    if (self->warned_full && zhashx_size (self->entries) < self->max_entries * 9 / 10)
        self->warned_full = false;
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
herd_store_lookup (herd_store_t *self, const char *client, herd_at_t *at)
{
    assert (self);
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, client);
    if (!entry)
        return NULL;
    if (at)
        *at = entry->at;
    return entry->line;
}

size_t
herd_store_size (herd_store_t *self)
{
    assert (self);
    return zhashx_size (self->entries);
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
    while (cursor < zhashx_size (self->entries))
        if (herd_store_scan (self, &cursor, SIZE_MAX, fn, arg) == -1)
            return -1;
    return 0;
}

int
herd_store_scan (herd_store_t *self, size_t *cursor_p, size_t max_lines,
                 herd_store_line_fn *fn, void *arg)
{
    assert (self && cursor_p);
    size_t end = zhashx_size (self->entries);
    if (max_lines < end - *cursor_p)
        end = *cursor_p + max_lines;
    //  Slots only grow, so a cursor taken earlier is still a place in them
    for (; *cursor_p < end; (*cursor_p)++) {
        s_entry_t *entry = self->slots [*cursor_p];
        if (fn (entry->line, entry->size, arg) == -1) {
            (*cursor_p)++;
            return -1;
        }
    }
    return 0;
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
    assert (at.latitude == 34 && at.longitude == -118);
    assert (s_offer (store, "AT C -5.0 kiwi +1+2 100.500000001") == HERD_STORE_STORED);
    assert (herd_store_lookup (store, "kiwi", &at));
    assert (at.latitude == 1 && at.longitude == 2);
    assert (!herd_store_lookup (store, "nobody", NULL));
    assert (s_offer (store, "IAMAT kiwi +1+2 200") == HERD_STORE_INVALID);
    assert (s_offer (store, "AT C -5.0 kiwi 1+2 200") == HERD_STORE_INVALID);
    assert (s_offer (store, "AT C +0.0 apple +1+2 1") == HERD_STORE_STORED);
    assert (s_offer (store, "AT C +0.0 pear +1+2 1") == HERD_STORE_FULL);
    assert (s_offer (store, "AT C +0.0 apple +1+2 2") == HERD_STORE_STORED);
    assert (herd_store_size (store) == 2);
    //  The digest depends on what is held, not on the order it came in
    herd_store_t *other = herd_store_new (10);
    assert (s_offer (other, "AT C +0.0 apple +1+2 2") == HERD_STORE_STORED);
    assert (herd_store_digest (other) != herd_store_digest (store));
    assert (s_offer (other, "AT A +0.1 kiwi +34-118 100.5") == HERD_STORE_STORED);
    assert (s_offer (other, "AT C -5.0 kiwi +1+2 100.500000001") == HERD_STORE_STORED);
    assert (herd_store_digest (other) == herd_store_digest (store));
    //  A scan by slots sees every client once, in slices, while the
    //  store changes under it; bytes follow replacements
    size_t cursor = 0, seen = 0;
    assert (herd_store_scan (other, &cursor, 1, s_count, &seen) == 0);
    assert (cursor == 1 && seen == 1);
    assert (s_offer (other, "AT C -5.0 kiwi +1+2 100.6") == HERD_STORE_STORED);
    assert (s_offer (other, "AT C +0.0 fig +1+2 1") == HERD_STORE_STORED);
    assert (herd_store_scan (other, &cursor, 10, s_count, &seen) == 0);
    assert (cursor == 3 && seen == 3);
    assert (herd_store_bytes (other) == strlen ("AT C +0.0 apple +1+2 2") + strlen ("AT C -5.0 kiwi +1+2 100.6")
                                      + strlen ("AT C +0.0 fig +1+2 1"));
    herd_store_destroy (&other);
    herd_store_destroy (&store);
    herd_store_destroy (&store);
    assert (store == NULL);
    printf ("OK\n");
}
