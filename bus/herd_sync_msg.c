//  bus/herd_sync_msg.c: catch-up message codec.

#include "bus/herd_bus_layer.h"

static const char *s_names [] = { NULL, "SYNC", "MORE", "CHUNK", "DONE" };

//  A number of [start, end), written the one way (no leading zero), so
//  that a message decoded encodes back to its own bytes. 0, or -1.
static int
s_number (const char *start, const char *end, uint64_t *number)
{
    size_t size = (size_t) (end - start);
    if (size > 1 && *start == '0')
        return -1;
    return herd_protocol_parse_u64 (start, size, number)? 0: -1;
}

static herd_sync_msg_kind_t
s_invalid (herd_sync_msg_t *decoded, const char *reason)
{
    decoded->kind = HERD_SYNC_MSG_INVALID;
    decoded->reason = reason;
    return decoded->kind;
}

herd_sync_msg_kind_t
herd_sync_msg_decode (const void *data, size_t size, herd_sync_msg_t *decoded)
{
    assert (decoded);
    memset (decoded, 0, sizeof *decoded);
    const char *text = (const char *) data;
    const char *end = text + size;
    const char *header_end = (const char *) memchr (text, '\n', size);
    if (!header_end)
        header_end = end;
    const char *space = (const char *) memchr (text, ' ', header_end - text);
    if (!space)
        return s_invalid (decoded, "no id");
    herd_sync_msg_kind_t kind = HERD_SYNC_MSG_INVALID;
    for (int index = HERD_SYNC_MSG_SYNC; index <= HERD_SYNC_MSG_DONE; index++)
        if ((size_t) (space - text) == strlen (s_names [index])
        &&  memcmp (text, s_names [index], space - text) == 0)
            kind = (herd_sync_msg_kind_t) index;
    if (!kind)
        return s_invalid (decoded, "unknown kind of message");
    if (kind != HERD_SYNC_MSG_CHUNK && header_end != end)
        return s_invalid (decoded, "lines after a message that has none");
    const char *id_end = header_end;
    const char *second = NULL;
    if (kind == HERD_SYNC_MSG_DONE) {
        second = (const char *) memchr (space + 1, ' ', header_end - space - 1);
        if (!second)
            return s_invalid (decoded, "DONE without its count");
        id_end = second;
    }
    if (s_number (space + 1, id_end, &decoded->id)
    ||  (second && s_number (second + 1, header_end, &decoded->count)))
        return s_invalid (decoded, "malformed number");
    if (kind == HERD_SYNC_MSG_CHUNK && header_end < end) {
        //  Lines follow the header, one \n before each; a NUL would cut
        //  a line short where it is read as text
        decoded->lines = header_end + 1;
        decoded->lines_size = (size_t) (end - decoded->lines);
        if (memchr (decoded->lines, 0, decoded->lines_size))
            return s_invalid (decoded, "a NUL inside a line");
        decoded->line_count = 1;
        for (const char *at = decoded->lines; (at = memchr (at, '\n', (size_t) (end - at))); at++)
            decoded->line_count++;
        decoded->cursor = decoded->lines;
    }
    decoded->kind = kind;
    return kind;
}

zframe_t *
herd_sync_msg_encode (const herd_sync_msg_t *message)
{
    assert (message && message->kind >= HERD_SYNC_MSG_SYNC && message->kind <= HERD_SYNC_MSG_DONE);
    char header [64];
    int header_size = message->kind == HERD_SYNC_MSG_DONE
        ? snprintf (header, sizeof header, "DONE %" PRIu64 " %" PRIu64, message->id, message->count)
        : snprintf (header, sizeof header, "%s %" PRIu64, s_names [message->kind], message->id);
    //  Lines (a chunk's lines, if not NULL: one empty line is a line)
    bool lines = message->kind == HERD_SYNC_MSG_CHUNK && message->lines;
    size_t lines_size = lines? message->lines_size: 0;
    zframe_t *frame = zframe_new (NULL, header_size + (lines? 1 + lines_size: 0));
    char *data = (char *) zframe_data (frame);
    memcpy (data, header, header_size);
    if (lines) {
        data [header_size] = '\n';
        memcpy (data + header_size + 1, message->lines, lines_size);
    }
    return frame;
}

int
herd_sync_msg_next (herd_sync_msg_t *decoded, herd_field_t *line)
{
    assert (decoded && line);
    //  cursor: the next line's start, NULL once past the last
    if (decoded->kind != HERD_SYNC_MSG_CHUNK || !decoded->cursor)
        return 0;
    const char *end = decoded->lines + decoded->lines_size;
    const char *stop = (const char *) memchr (decoded->cursor, '\n', (size_t) (end - decoded->cursor));
    line->start = decoded->cursor;
    line->size = (size_t) ((stop? stop: end) - decoded->cursor);
    decoded->cursor = stop? stop + 1: NULL;
    return 1;
}

//  --------------------------------------------------------------------------
//  Selftest: every message both ways, and what a peer must not get past

static void
s_round_trip (const herd_sync_msg_t *message, const char *expected, herd_sync_msg_t *decoded)
{
    zframe_t *frame = herd_sync_msg_encode (message);
    assert (zframe_size (frame) == strlen (expected));
    assert (memcmp (zframe_data (frame), expected, strlen (expected)) == 0);
    //  Decoded from a copy: the fields point into it
    static char copy [256];
    memcpy (copy, zframe_data (frame), zframe_size (frame));
    assert (herd_sync_msg_decode (copy, zframe_size (frame), decoded) == message->kind);
    zframe_destroy (&frame);
    assert (decoded->id == message->id);
}

void
herd_sync_msg_test (bool verbose)
{
    printf (" * herd_sync_msg: ");
    if (verbose)
        printf ("\n");
    herd_sync_msg_t decoded;
    herd_sync_msg_t sync = { .kind = HERD_SYNC_MSG_SYNC, .id = 18446744073709551615ull };
    s_round_trip (&sync, "SYNC 18446744073709551615", &decoded);
    herd_sync_msg_t more = { .kind = HERD_SYNC_MSG_MORE, .id = 7 };
    s_round_trip (&more, "MORE 7", &decoded);
    herd_sync_msg_t done = { .kind = HERD_SYNC_MSG_DONE, .id = 42, .count = 1234 };
    s_round_trip (&done, "DONE 42 1234", &decoded);
    assert (decoded.count == 1234);
    herd_sync_msg_t chunk = { .kind = HERD_SYNC_MSG_CHUNK, .id = 9 };
    s_round_trip (&chunk, "CHUNK 9", &decoded);
    herd_field_t line;
    assert (decoded.line_count == 0 && herd_sync_msg_next (&decoded, &line) == 0);
    const char *lines = "AT A +0.1 kiwi +1+1 1\nAT B +0.2 pear +2+2 2";
    chunk.lines = lines;
    chunk.lines_size = strlen (lines);
    s_round_trip (&chunk, "CHUNK 9\nAT A +0.1 kiwi +1+1 1\nAT B +0.2 pear +2+2 2", &decoded);
    assert (decoded.line_count == 2);
    assert (herd_sync_msg_next (&decoded, &line) == 1 && herd_field_is (&line, "AT A +0.1 kiwi +1+1 1"));
    assert (herd_sync_msg_next (&decoded, &line) == 1 && herd_field_is (&line, "AT B +0.2 pear +2+2 2"));
    assert (herd_sync_msg_next (&decoded, &line) == 0);

    //  Malformed: refused with a reason, never trusted
    const char *bad [] = { "", "SYNC", "SYNC ", "SYNC x", "SYNC 1 2", "SYNC -1", "sync 1",
                           "HELLO 1", "DONE 1", "DONE 1 x", "DONE 1 2 3", "MORE 1\nAT",
                           "SYNC 18446744073709551616", "SYNC 123456789012345678901", "CHUNK\n",
                           "MORE 07", "DONE 1 00" };
    for (size_t index = 0; index < sizeof bad / sizeof bad [0]; index++) {
        herd_sync_msg_kind_t kind = herd_sync_msg_decode (bad [index], strlen (bad [index]), &decoded);
        if (kind && verbose)
            printf ("    accepted: '%s'\n", bad [index]);
        assert (kind == HERD_SYNC_MSG_INVALID && decoded.reason && *decoded.reason);
    }
    assert (herd_sync_msg_decode ("CHUNK 1\nA\0B", 11, &decoded) == HERD_SYNC_MSG_INVALID);
    //  A chunk's empty lines are lines (the merge drops them as invalid)
    assert (herd_sync_msg_decode ("CHUNK 1\n\n", 9, &decoded) == HERD_SYNC_MSG_CHUNK);
    assert (decoded.line_count == 2);
    assert (herd_sync_msg_next (&decoded, &line) == 1 && line.size == 0);
    assert (herd_sync_msg_next (&decoded, &line) == 1 && line.size == 0);
    assert (herd_sync_msg_next (&decoded, &line) == 0);
    printf ("OK\n");
}
