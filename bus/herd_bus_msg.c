//  bus/herd_bus_msg.c: the bus and feed codec.

#include "bus/herd_bus_layer.h"

//  Cuts the next space-separated word off [*cursor, end): false if none
static bool
s_word (const char **cursor, const char *end, herd_field_t *word)
{
    const char *start = *cursor;
    const char *space = memchr (start, ' ', (size_t) (end - start));
    const char *stop = space? space: end;
    if (stop == start)
        return false;
    word->start = start;
    word->size = (size_t) (stop - start);
    *cursor = space? space + 1: end;
    return true;
}

static herd_bus_msg_kind_t
s_invalid (herd_bus_msg_t *decoded, const char *reason)
{
    decoded->kind = HERD_BUS_MSG_INVALID;
    decoded->reason = reason;
    return decoded->kind;
}

herd_bus_msg_kind_t
herd_bus_msg_decode (const herd_bus_frame_t *frames, size_t count, herd_bus_msg_t *decoded)
{
    assert (frames && decoded);
    memset (decoded, 0, sizeof *decoded);
    if (count != 1)
        return s_invalid (decoded, count? "more than one frame": "no frame");
    const char *text = (const char *) frames [0].data;
    const char *newline = memchr (text, '\n', frames [0].size);
    const char *head_end = newline? newline: text + frames [0].size;
    const char *cursor = text;
    herd_field_t kind, sequence, lines;
    if (!s_word (&cursor, head_end, &kind))
        return s_invalid (decoded, "empty message");
    //  "BATCH/2", "HEARTBEAT/2": the kind, then the bus format; format 1
    //  had none
    const char *slash = memchr (kind.start, '/', kind.size);
    size_t kind_size = slash? (size_t) (slash - kind.start): kind.size;
    bool batch = kind_size == 5 && !memcmp (kind.start, "BATCH", 5);
    bool heartbeat = kind_size == 9 && !memcmp (kind.start, "HEARTBEAT", 9);
    if (!batch && !heartbeat)
        return s_invalid (decoded, "unknown kind of message");
    uint64_t format = 1;
    if (slash && !herd_protocol_parse_u64 (slash + 1, kind.size - kind_size - 1, &format))
        return s_invalid (decoded, "malformed bus format");
    if (!s_word (&cursor, head_end, &decoded->server)
    ||  !s_word (&cursor, head_end, &sequence)
    ||  !herd_protocol_parse_u64 (sequence.start, sequence.size, &decoded->sequence))
        return s_invalid (decoded, "malformed head (server, sequence)");
    decoded->format = format;
    if (format != HERD_BUS_FORMAT) {
        //  Another release's bus: its server and format are all we read
        decoded->kind = HERD_BUS_MSG_FOREIGN;
        return decoded->kind;
    }
    if (heartbeat) {
        if (cursor != head_end || newline)
            return s_invalid (decoded, "malformed heartbeat");
        decoded->kind = HERD_BUS_MSG_HEARTBEAT;
        return decoded->kind;
    }
    uint64_t lines_count;
    if (!s_word (&cursor, head_end, &lines) || cursor != head_end || !newline
    ||  !herd_protocol_parse_u64 (lines.start, lines.size, &lines_count) || lines_count == 0)
        return s_invalid (decoded, "malformed batch head (count)");
    //  The lines: exactly count of them, each ended by a newline
    decoded->cursor = newline + 1;
    decoded->end = text + frames [0].size;
    if (decoded->cursor == decoded->end || decoded->end [-1] != '\n')
        return s_invalid (decoded, "batch does not end with a whole line");
    size_t found = 0;
    for (const char *line = decoded->cursor; line < decoded->end; found++) {
        const char *stop = memchr (line, '\n', (size_t) (decoded->end - line));
        line = stop + 1;
    }
    if (found != lines_count)
        return s_invalid (decoded, "batch holds another number of lines than its head says");
    decoded->count = found;
    decoded->kind = HERD_BUS_MSG_BATCH;
    return decoded->kind;
}

int
herd_bus_msg_next (herd_bus_msg_t *decoded, herd_field_t *line)
{
    assert (decoded && line);
    if (decoded->kind != HERD_BUS_MSG_BATCH || decoded->cursor >= decoded->end)
        return 0;
    const char *stop = memchr (decoded->cursor, '\n', (size_t) (decoded->end - decoded->cursor));
    line->start = decoded->cursor;
    line->size = (size_t) (stop - decoded->cursor);
    decoded->cursor = stop + 1;
    return 1;
}

herd_bus_msg_kind_t
herd_bus_msg_decode_feed (const herd_bus_frame_t *frames, size_t count, herd_bus_msg_t *decoded)
{
    assert (frames && decoded);
    memset (decoded, 0, sizeof *decoded);
    if (count != 2)
        return s_invalid (decoded, "a feed message has two frames");
    herd_at_t *at = &decoded->at;
    if (frames [1].size == 0
    ||  herd_protocol_parse_at ((const char *) frames [1].data, frames [1].size, at))
        return s_invalid (decoded, "not an AT line");
    if (at->client.size != frames [0].size || memcmp (at->client.start, frames [0].data, at->client.size))
        return s_invalid (decoded, "first frame is not the line's client");
    decoded->kind = HERD_BUS_MSG_UPDATE;
    return decoded->kind;
}

size_t
herd_bus_msg_receive (void *handle, zmq_msg_t *parts, herd_bus_frame_t *frames)
{
    assert (handle && parts && frames);
    size_t count = 0;
    for (bool more = true; more; ) {
        zmq_msg_t extra;
        zmq_msg_t *part = count < HERD_BUS_MSG_FRAMES_MAX? &parts [count]: &extra;
        zmq_msg_init (part);
        if (zmq_msg_recv (part, handle, count? 0: ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (part);
            break;
        }
        more = zmq_msg_more (part);
        if (part == &extra)
            zmq_msg_close (part);
        else {
            frames [count].data = zmq_msg_data (part);
            frames [count++].size = zmq_msg_size (part);
        }
    }
    return count;
}

int
herd_bus_msg_receive_feed (void *handle, herd_bus_feed_msg_t *message)
{
    assert (handle && message);
    herd_bus_frame_t frames [HERD_BUS_MSG_FRAMES_MAX];
    message->count = herd_bus_msg_receive (handle, message->parts, frames);
    if (!message->count)
        return 0;
    if (herd_bus_msg_decode_feed (frames, message->count, &message->decoded) == HERD_BUS_MSG_UPDATE)
        return 1;
    herd_bus_msg_feed_close (message);
    return -1;
}

void
herd_bus_msg_feed_close (herd_bus_feed_msg_t *message)
{
    assert (message);
    for (size_t index = 0; index < message->count; index++)
        zmq_msg_close (&message->parts [index]);
    message->count = 0;
}

int
herd_bus_msg_send_heartbeat (void *handle, const char *server, uint64_t sequence)
{
    assert (handle && server);
    char text [300];
    size_t server_size = strlen (server);
    if (server_size > sizeof text - 40)
        return -1;
    //  "HEARTBEAT/<format> "
    size_t size = 10;
    memcpy (text, "HEARTBEAT/", size);
    size += herd_protocol_format_u64 (text + size, HERD_BUS_FORMAT);
    text [size++] = ' ';
    memcpy (text + size, server, server_size);
    size += server_size;
    text [size++] = ' ';
    size += herd_protocol_format_u64 (text + size, sequence);
    return zmq_send (handle, text, size, ZMQ_DONTWAIT) == -1? -1: 0;
}

int
herd_bus_msg_send_feed (void *handle, const herd_at_t *at)
{
    assert (handle && at);
    if (zmq_send (handle, at->client.start, at->client.size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (handle, at->line.start, at->line.size, ZMQ_DONTWAIT) == -1)
        return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  A batch: its lines follow room kept at the front for its head, which is
//  written right before them when it is sent, so nothing is copied twice

struct _herd_bus_batch_t {
    char *server;               //  Our name, for the head
    char *buffer;               //  Room for the head, then the lines
    size_t room;                //  Bytes kept for the head
    size_t capacity;            //  Of buffer: one bus message at most
    size_t size;                //  Bytes of lines held
    size_t count;               //  Lines held
};

herd_bus_batch_t *
herd_bus_batch_new (const char *server)
{
    assert (server);
    herd_bus_batch_t *self = (herd_bus_batch_t *) zmalloc (sizeof (herd_bus_batch_t));
    self->server = strdup (server);
    //  "BATCH/<format> <server> <20 digits> <20 digits>\n"
    self->room = 6 + 20 + 1 + strlen (server) + 1 + 20 + 1 + 20 + 1;
    self->capacity = HERD_BUS_MAXMSGSIZE;
    assert (self->room < self->capacity / 2);
    self->buffer = (char *) zmalloc (self->capacity);
    return self;
}

void
herd_bus_batch_destroy (herd_bus_batch_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_bus_batch_t *self = *self_p;
        freen (self->buffer);
        freen (self->server);
        freen (self);
        *self_p = NULL;
    }
}

bool
herd_bus_batch_add (herd_bus_batch_t *self, const char *line, size_t size)
{
    assert (self && line);
    //  A line alone may fill a whole message; lines together stop at
    //  HERD_BUS_BATCH_BYTES
    size_t limit = self->count? HERD_BUS_BATCH_BYTES: self->capacity - self->room;
    if (self->size + size + 1 > limit)
        return false;
    char *lines = self->buffer + self->room;
    memcpy (lines + self->size, line, size);
    lines [self->size + size] = '\n';
    self->size += size + 1;
    self->count++;
    return true;
}

size_t
herd_bus_batch_count (herd_bus_batch_t *self)
{
    assert (self);
    return self->count;
}

int
herd_bus_batch_send (herd_bus_batch_t *self, void *handle, uint64_t sequence)
{
    assert (self && self->count);
    if (!handle) {
        self->size = self->count = 0;
        return 0;
    }
    char head [400];
    size_t server_size = strlen (self->server);
    size_t size = 6;
    memcpy (head, "BATCH/", size);
    size += herd_protocol_format_u64 (head + size, HERD_BUS_FORMAT);
    head [size++] = ' ';
    memcpy (head + size, self->server, server_size);
    size += server_size;
    head [size++] = ' ';
    size += herd_protocol_format_u64 (head + size, sequence);
    head [size++] = ' ';
    size += herd_protocol_format_u64 (head + size, self->count);
    head [size++] = '\n';
    assert (size <= self->room);
    char *start = self->buffer + self->room - size;
    memcpy (start, head, size);
    int rc = zmq_send (handle, start, size + self->size, ZMQ_DONTWAIT) == -1? -1: 0;
    self->size = self->count = 0;
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

static herd_bus_msg_kind_t
s_decode_text (const char *text, herd_bus_msg_t *decoded)
{
    herd_bus_frame_t frame = { text, strlen (text) };
    return herd_bus_msg_decode (&frame, 1, decoded);
}

void
herd_bus_msg_test (bool verbose)
{
    printf (" * herd_bus_msg: ");
    if (verbose)
        printf ("\n");
    herd_bus_msg_t decoded;
    herd_field_t at;
    zsock_t *sink = zsock_new_pull ("inproc://herd-bus-msg-test");
    zsock_t *source = zsock_new_push (">inproc://herd-bus-msg-test");
    assert (sink && source);
    void *out = zsock_resolve (source), *in = zsock_resolve (sink);
    zmq_msg_t parts [HERD_BUS_MSG_FRAMES_MAX];
    herd_bus_frame_t frames [HERD_BUS_MSG_FRAMES_MAX];

    //  A batch of three, encoded and decoded
    herd_bus_batch_t *batch = herd_bus_batch_new ("Bailey");
    const char *lines [] = { "AT Bailey +0.1 kiwi +1+1 5", "AT Bona -0.2 pear +2-2 6.5", "AT X +0.0 fig +3+3 7" };
    for (size_t index = 0; index < 3; index++)
        assert (herd_bus_batch_add (batch, lines [index], strlen (lines [index])));
    assert (herd_bus_batch_count (batch) == 3);
    assert (herd_bus_batch_send (batch, out, 42) == 0);
    assert (herd_bus_batch_count (batch) == 0);
    zclock_sleep (10);
    size_t count = herd_bus_msg_receive (in, parts, frames);
    assert (count == 1);
    assert (herd_bus_msg_decode (frames, 1, &decoded) == HERD_BUS_MSG_BATCH);
    assert (decoded.sequence == 42 && decoded.count == 3);
    assert (decoded.server.size == 6 && !memcmp (decoded.server.start, "Bailey", 6));
    for (size_t index = 0; index < 3; index++) {
        assert (herd_bus_msg_next (&decoded, &at) == 1);
        assert (at.size == strlen (lines [index]) && !memcmp (at.start, lines [index], at.size));
    }
    assert (herd_bus_msg_next (&decoded, &at) == 0);
    zmq_msg_close (&parts [0]);

    //  A full batch says so; the line then starts the next one
    char line [200];
    size_t added = 0;
    while (true) {
        int size = snprintf (line, sizeof line, "AT Bailey +0.1 client%zu +1+1 5", added);
        if (!herd_bus_batch_add (batch, line, (size_t) size))
            break;
        added++;
    }
    assert (added > 500 && herd_bus_batch_count (batch) == added);
    assert (herd_bus_batch_send (batch, out, 43) == 0);
    zclock_sleep (10);
    assert (herd_bus_msg_receive (in, parts, frames) == 1);
    assert (frames [0].size <= HERD_BUS_BATCH_BYTES + 64);
    assert (herd_bus_msg_decode (frames, 1, &decoded) == HERD_BUS_MSG_BATCH);
    assert (decoded.count == added);
    size_t seen = 0;
    while (herd_bus_msg_next (&decoded, &at) == 1)
        seen++;
    assert (seen == added);
    zmq_msg_close (&parts [0]);
    //  One line bigger than a batch still goes, alone
    char *big = (char *) zmalloc (HERD_BUS_BATCH_BYTES + 100);
    memcpy (big, "AT A +0.1 ", 10);
    memset (big + 10, 'x', HERD_BUS_BATCH_BYTES);
    memcpy (big + 10 + HERD_BUS_BATCH_BYTES, " +1+1 5", 7);
    assert (herd_bus_batch_add (batch, big, HERD_BUS_BATCH_BYTES + 17));
    assert (!herd_bus_batch_add (batch, lines [0], strlen (lines [0])));
    assert (herd_bus_batch_send (batch, out, 44) == 0);
    freen (big);
    zclock_sleep (10);
    assert (herd_bus_msg_receive (in, parts, frames) == 1);
    zmq_msg_close (&parts [0]);
    herd_bus_batch_destroy (&batch);
    assert (batch == NULL);

    //  Heartbeats
    assert (herd_bus_msg_send_heartbeat (out, "Bona", 7) == 0);
    zclock_sleep (10);
    assert (herd_bus_msg_receive (in, parts, frames) == 1);
    assert (herd_bus_msg_decode (frames, 1, &decoded) == HERD_BUS_MSG_HEARTBEAT);
    assert (decoded.sequence == 7 && decoded.server.size == 4);
    zmq_msg_close (&parts [0]);

    //  Feed messages: two frames, the client first
    herd_at_t feed_at;
    assert (herd_protocol_parse_at (lines [1], strlen (lines [1]), &feed_at) == 0);
    assert (herd_bus_msg_send_feed (out, &feed_at) == 0);
    zclock_sleep (10);
    count = herd_bus_msg_receive (in, parts, frames);
    assert (count == 2);
    assert (herd_bus_msg_decode_feed (frames, count, &decoded) == HERD_BUS_MSG_UPDATE);
    assert (decoded.at.client.size == 4 && !memcmp (decoded.at.client.start, "pear", 4));
    //  A feed message is no server message, and the reverse
    assert (herd_bus_msg_decode (frames, count, &decoded) == HERD_BUS_MSG_INVALID);
    for (size_t index = 0; index < count; index++)
        zmq_msg_close (&parts [index]);
    herd_bus_frame_t wrong [2] = { { "kiwi", 4 }, { lines [1], strlen (lines [1]) } };
    assert (herd_bus_msg_decode_feed (wrong, 2, &decoded) == HERD_BUS_MSG_INVALID);
    assert (streq (decoded.reason, "first frame is not the line's client"));
    assert (herd_bus_msg_decode_feed (wrong, 1, &decoded) == HERD_BUS_MSG_INVALID);

    //  Malformed server messages, each for its own reason
    assert (s_decode_text ("", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HELLO A 1", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2 A", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2 A x", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2 A 99999999999999999999", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2 A 1 more", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2 A 1\n", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2  1", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("BATCH/2 A 1 1", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("BATCH/2 A 1 0\n", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("BATCH/2 A 1 2\nAT A +0.1 k +1+1 5\n", &decoded) == HERD_BUS_MSG_INVALID);
    assert (streq (decoded.reason, "batch holds another number of lines than its head says"));
    assert (s_decode_text ("BATCH/2 A 1 1\nAT A +0.1 k +1+1 5", &decoded) == HERD_BUS_MSG_INVALID);
    //  A batch with a bad line is a batch: its receiver judges each line
    assert (s_decode_text ("BATCH/2 A 1 3\nAT A +0.1 k +1+1 5\nIAMAT k +1+1 5\nAT A +0.1 j +1+1 5\n", &decoded)
            == HERD_BUS_MSG_BATCH);
    assert (herd_bus_msg_next (&decoded, &at) == 1);
    assert (herd_bus_msg_next (&decoded, &at) == 1 && at.size == 14);
    assert (herd_bus_msg_next (&decoded, &at) == 1 && at.start [10] == 'j');
    assert (herd_bus_msg_next (&decoded, &at) == 0);
    herd_bus_frame_t two [2] = { { "HEARTBEAT/2 A 1", 15 }, { "x", 1 } };
    assert (herd_bus_msg_decode (two, 2, &decoded) == HERD_BUS_MSG_INVALID);
    //  Another release's bus: foreign, with its server and format; ours
    //  says its format in every head
    assert (s_decode_text ("BATCH A 1 1\nAT A +0.1 k +1+1 5\n", &decoded) == HERD_BUS_MSG_FOREIGN);
    assert (decoded.format == 1 && herd_field_is (&decoded.server, "A"));
    assert (s_decode_text ("HEARTBEAT/3 B 7", &decoded) == HERD_BUS_MSG_FOREIGN && decoded.format == 3);
    assert (s_decode_text ("HEARTBEAT/x B 7", &decoded) == HERD_BUS_MSG_INVALID);
    assert (s_decode_text ("HEARTBEAT/2 B 7", &decoded) == HERD_BUS_MSG_HEARTBEAT && decoded.format == 2);

    zsock_destroy (&source);
    zsock_destroy (&sink);
    printf ("OK\n");
}
