//  bus/herd_sync_msg.c: catch-up message codec.

#include "bus/herd_bus_layer.h"

struct _herd_sync_msg_t {
    herd_sync_msg_kind_t kind;
    uint64_t id;                //  Which request this belongs to
    uint64_t count;             //  DONE: lines in the snapshot
    char *body;                 //  CHUNK: lines, each ended by \n (owned)
    size_t body_size;
    size_t body_capacity;
    size_t lines;               //  CHUNK: lines in body
    size_t cursor;              //  CHUNK: next line to walk
};

static const char *s_names [] = { NULL, "SYNC", "MORE", "CHUNK", "DONE" };

herd_sync_msg_t *
herd_sync_msg_new (herd_sync_msg_kind_t kind, uint64_t id)
{
    assert (kind >= HERD_SYNC_MSG_SYNC && kind <= HERD_SYNC_MSG_DONE);
    herd_sync_msg_t *self = (herd_sync_msg_t *) zmalloc (sizeof (herd_sync_msg_t));
    self->kind = kind;
    self->id = id;
    return self;
}

void
herd_sync_msg_destroy (herd_sync_msg_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        freen ((*self_p)->body);
        freen (*self_p);
    }
}

//  A decimal number of 1..20 digits that fits 64 bits, the whole of
//  [start, end). 0, or -1.
static int
s_number (const char *start, const char *end, uint64_t *number)
{
    size_t size = (size_t) (end - start);
    if (size == 0 || size > 20)
        return -1;
    uint64_t value = 0;
    for (const char *digit = start; digit < end; digit++) {
        if (*digit < '0' || *digit > '9')
            return -1;
        uint64_t next = value * 10 + (uint64_t) (*digit - '0');
        if (next / 10 != value)
            return -1;              //  Overflow
        value = next;
    }
    *number = value;
    return 0;
}

herd_sync_msg_t *
herd_sync_msg_decode (const void *data, size_t size)
{
    const char *text = (const char *) data;
    const char *end = text + size;
    const char *header_end = (const char *) memchr (text, '\n', size);
    if (!header_end)
        header_end = end;
    const char *space = (const char *) memchr (text, ' ', header_end - text);
    if (!space)
        return NULL;
    herd_sync_msg_kind_t kind = 0;
    for (int index = HERD_SYNC_MSG_SYNC; index <= HERD_SYNC_MSG_DONE; index++)
        if ((size_t) (space - text) == strlen (s_names [index])
        &&  memcmp (text, s_names [index], space - text) == 0)
            kind = (herd_sync_msg_kind_t) index;
    if (!kind || (kind != HERD_SYNC_MSG_CHUNK && header_end != end))
        return NULL;
    const char *id_end = header_end;
    const char *second = NULL;
    if (kind == HERD_SYNC_MSG_DONE) {
        second = (const char *) memchr (space + 1, ' ', header_end - space - 1);
        if (!second)
            return NULL;
        id_end = second;
    }
    uint64_t id, count = 0;
    if (s_number (space + 1, id_end, &id)
    ||  (second && s_number (second + 1, header_end, &count)))
        return NULL;
    herd_sync_msg_t *self = herd_sync_msg_new (kind, id);
    self->count = count;
    if (kind == HERD_SYNC_MSG_CHUNK && header_end < end) {
        //  Lines follow the header, one \n between each; kept null-split
        const char *line = header_end + 1;
        size_t lines_size = (size_t) (end - line);
        self->body = (char *) malloc (lines_size + 1);
        assert (self->body);
        memcpy (self->body, line, lines_size);
        self->body [lines_size] = '\n';
        self->body_size = self->body_capacity = lines_size + 1;
        for (size_t index = 0; index < self->body_size; index++)
            if (self->body [index] == '\n') {
                self->body [index] = 0;
                self->lines++;
            }
            else
            if (self->body [index] == 0) {
                herd_sync_msg_destroy (&self);
                return NULL;        //  A NUL would cut a line short
            }
    }
    return self;
}

zframe_t *
herd_sync_msg_encode (herd_sync_msg_t *self)
{
    assert (self);
    char header [64];
    int header_size = self->kind == HERD_SYNC_MSG_DONE
        ? snprintf (header, sizeof header, "DONE %" PRIu64 " %" PRIu64, self->id, self->count)
        : snprintf (header, sizeof header, "%s %" PRIu64, s_names [self->kind], self->id);
    //  Lines are held null-ended; the wire has \n before each instead
    zframe_t *frame = zframe_new (NULL, header_size + self->body_size);
    char *data = (char *) zframe_data (frame);
    memcpy (data, header, header_size);
    for (size_t index = 0; index < self->body_size; index++)
        data [header_size + index] = self->body [index]? self->body [index]: '\n';
    //  "\n" + line per line: shift the separators to the front
    if (self->body_size) {
        memmove (data + header_size + 1, data + header_size, self->body_size - 1);
        data [header_size] = '\n';
    }
    return frame;
}

herd_sync_msg_kind_t
herd_sync_msg_kind (herd_sync_msg_t *self)
{
    assert (self);
    return self->kind;
}

uint64_t
herd_sync_msg_id (herd_sync_msg_t *self)
{
    assert (self);
    return self->id;
}

uint64_t
herd_sync_msg_count (herd_sync_msg_t *self)
{
    assert (self);
    return self->count;
}

void
herd_sync_msg_set_count (herd_sync_msg_t *self, uint64_t count)
{
    assert (self);
    self->count = count;
}

void
herd_sync_msg_add_line (herd_sync_msg_t *self, const char *line, size_t size)
{
    assert (self && self->kind == HERD_SYNC_MSG_CHUNK);
    assert (!memchr (line, '\n', size));
    if (self->body_size + size + 1 > self->body_capacity) {
        size_t capacity = self->body_capacity? self->body_capacity * 2: 4096;
        while (capacity < self->body_size + size + 1)
            capacity *= 2;
        self->body = (char *) realloc (self->body, capacity);
        assert (self->body);
        self->body_capacity = capacity;
    }
    memcpy (self->body + self->body_size, line, size);
    self->body [self->body_size + size] = 0;
    self->body_size += size + 1;
    self->lines++;
}

size_t
herd_sync_msg_lines (herd_sync_msg_t *self)
{
    assert (self);
    return self->lines;
}

const char *
herd_sync_msg_next_line (herd_sync_msg_t *self, size_t *size)
{
    assert (self);
    if (self->cursor >= self->body_size)
        return NULL;
    const char *line = self->body + self->cursor;
    size_t length = strlen (line);
    self->cursor += length + 1;
    if (size)
        *size = length;
    return line;
}

//  --------------------------------------------------------------------------
//  Selftest: every message both ways, and what a peer must not get past

static herd_sync_msg_t *
s_round_trip (herd_sync_msg_t *message, const char *expected)
{
    zframe_t *frame = herd_sync_msg_encode (message);
    assert (zframe_size (frame) == strlen (expected));
    assert (memcmp (zframe_data (frame), expected, strlen (expected)) == 0);
    herd_sync_msg_t *decoded = herd_sync_msg_decode (zframe_data (frame), zframe_size (frame));
    zframe_destroy (&frame);
    assert (decoded);
    assert (herd_sync_msg_kind (decoded) == herd_sync_msg_kind (message));
    assert (herd_sync_msg_id (decoded) == herd_sync_msg_id (message));
    return decoded;
}

void
herd_sync_msg_test (bool verbose)
{
    printf (" * herd_sync_msg: ");
    if (verbose)
        printf ("\n");
    herd_sync_msg_t *message = herd_sync_msg_new (HERD_SYNC_MSG_SYNC, 18446744073709551615ull);
    herd_sync_msg_t *decoded = s_round_trip (message, "SYNC 18446744073709551615");
    herd_sync_msg_destroy (&decoded);
    herd_sync_msg_destroy (&message);
    assert (message == NULL);

    message = herd_sync_msg_new (HERD_SYNC_MSG_MORE, 7);
    decoded = s_round_trip (message, "MORE 7");
    herd_sync_msg_destroy (&decoded);
    herd_sync_msg_destroy (&message);

    message = herd_sync_msg_new (HERD_SYNC_MSG_DONE, 42);
    herd_sync_msg_set_count (message, 1234);
    decoded = s_round_trip (message, "DONE 42 1234");
    assert (herd_sync_msg_count (decoded) == 1234);
    herd_sync_msg_destroy (&decoded);
    herd_sync_msg_destroy (&message);

    message = herd_sync_msg_new (HERD_SYNC_MSG_CHUNK, 9);
    decoded = s_round_trip (message, "CHUNK 9");
    assert (herd_sync_msg_lines (decoded) == 0);
    assert (herd_sync_msg_next_line (decoded, NULL) == NULL);
    herd_sync_msg_destroy (&decoded);
    herd_sync_msg_add_line (message, "AT A +0.1 kiwi +1+1 1", 21);
    herd_sync_msg_add_line (message, "AT B +0.2 pear +2+2 2", 21);
    decoded = s_round_trip (message, "CHUNK 9\nAT A +0.1 kiwi +1+1 1\nAT B +0.2 pear +2+2 2");
    assert (herd_sync_msg_lines (decoded) == 2);
    size_t size = 0;
    assert (streq (herd_sync_msg_next_line (decoded, &size), "AT A +0.1 kiwi +1+1 1") && size == 21);
    assert (streq (herd_sync_msg_next_line (decoded, &size), "AT B +0.2 pear +2+2 2"));
    assert (herd_sync_msg_next_line (decoded, &size) == NULL);
    herd_sync_msg_destroy (&decoded);
    herd_sync_msg_destroy (&message);

    //  Malformed: refused, never trusted
    const char *bad [] = { "", "SYNC", "SYNC ", "SYNC x", "SYNC 1 2", "SYNC -1", "sync 1",
                           "HELLO 1", "DONE 1", "DONE 1 x", "DONE 1 2 3", "MORE 1\nAT",
                           "SYNC 18446744073709551616", "SYNC 123456789012345678901", "CHUNK\n" };
    for (size_t index = 0; index < sizeof bad / sizeof bad [0]; index++) {
        decoded = herd_sync_msg_decode (bad [index], strlen (bad [index]));
        if (decoded && verbose)
            printf ("    accepted: '%s'\n", bad [index]);
        assert (decoded == NULL);
    }
    assert (herd_sync_msg_decode ("CHUNK 1\nA\0B", 11) == NULL);
    //  A chunk's empty lines are lines (the merge drops them as invalid)
    decoded = herd_sync_msg_decode ("CHUNK 1\n\n", 9);
    assert (decoded && herd_sync_msg_lines (decoded) == 2);
    herd_sync_msg_destroy (&decoded);
    printf ("OK\n");
}
