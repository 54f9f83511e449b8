//  bus/herd_bus_msg.c: decoding bus messages.

#include "herd_classes.h"

//  A sequence number: 1 to 20 decimal digits, nothing else
static bool
s_parse_sequence (const herd_bus_frame_t *frame, uint64_t *sequence)
{
    if (!frame || frame->size == 0 || frame->size > 20)
        return false;
    char text [21];
    memcpy (text, frame->data, frame->size);
    text [frame->size] = 0;
    for (size_t index = 0; text [index]; index++)
        if (!isdigit ((unsigned char) text [index]))
            return false;
    errno = 0;
    *sequence = strtoull (text, NULL, 10);
    return errno == 0;
}

static herd_bus_msg_kind_t
s_invalid (herd_bus_msg_t *decoded, const char *reason)
{
    decoded->kind = HERD_BUS_MSG_INVALID;
    decoded->reason = reason;
    return decoded->kind;
}

herd_bus_msg_kind_t
herd_bus_msg_decode_frames (const herd_bus_frame_t *frames, size_t count, herd_bus_msg_t *decoded)
{
    assert (frames && decoded);
    memset (decoded, 0, sizeof *decoded);
    if (count < 2)
        return s_invalid (decoded, "fewer than two frames");
    const herd_bus_frame_t *first = &frames [0], *second = &frames [1];
    const herd_bus_frame_t *third = count > 2? &frames [2]: NULL;
    const herd_bus_frame_t *fourth = count > 3? &frames [3]: NULL;
    if (first->size == 0) {
        if (second->size != 9 || memcmp (second->data, "HEARTBEAT", 9) || !third || third->size == 0
        ||  !s_parse_sequence (fourth, &decoded->sequence) || count > 4)
            return s_invalid (decoded, "malformed control message");
        decoded->has_sequence = true;
        decoded->kind = HERD_BUS_MSG_HEARTBEAT;
        return decoded->kind;
    }
    herd_at_t *at = &decoded->at;
    if (second->size == 0 || herd_protocol_parse_at ((const char *) second->data, second->size, at))
        return s_invalid (decoded, "not an AT line");
    if (at->client.size != first->size || memcmp (at->client.start, first->data, at->client.size))
        return s_invalid (decoded, "first frame is not the line's client");
    //  A number that is not one is no number: the update still counts
    decoded->has_sequence = s_parse_sequence (third, &decoded->sequence);
    decoded->kind = HERD_BUS_MSG_UPDATE;
    return decoded->kind;
}

herd_bus_msg_kind_t
herd_bus_msg_decode (zmsg_t *msg, herd_bus_msg_t *decoded)
{
    assert (msg && decoded);
    herd_bus_frame_t frames [HERD_BUS_MSG_FRAMES_MAX];
    size_t count = 0;
    for (zframe_t *frame = zmsg_first (msg); frame && count < HERD_BUS_MSG_FRAMES_MAX;
         frame = zmsg_next (msg)) {
        frames [count].data = zframe_data (frame);
        frames [count++].size = zframe_size (frame);
    }
    return herd_bus_msg_decode_frames (frames, count, decoded);
}

zmsg_t *
herd_bus_msg_heartbeat (const char *server, uint64_t sequence)
{
    assert (server);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, "HEARTBEAT");
    zmsg_addstr (msg, server);
    zmsg_addstrf (msg, "%" PRIu64, sequence);
    return msg;
}

//  --------------------------------------------------------------------------
//  Selftest

static herd_bus_msg_kind_t
s_decode (herd_bus_msg_t *decoded, const char *first, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, first);
    for (const char *frame = first; frame; frame = va_arg (args, const char *))
        zmsg_addstr (msg, frame);
    va_end (args);
    herd_bus_msg_kind_t kind = herd_bus_msg_decode (msg, decoded);
    zmsg_destroy (&msg);
    return kind;
}

void
herd_bus_msg_test (bool verbose)
{
    printf (" * herd_bus_msg: ");
    if (verbose)
        printf ("\n");
    herd_bus_msg_t decoded;
    zmsg_t *msg = herd_bus_msg_heartbeat ("Bailey", 42);
    assert (herd_bus_msg_decode (msg, &decoded) == HERD_BUS_MSG_HEARTBEAT);
    assert (decoded.sequence == 42);
    zmsg_destroy (&msg);
    //  Fields point into the message: keep it while they are used
    msg = zmsg_new ();
    zmsg_addstr (msg, "kiwi");
    zmsg_addstr (msg, "AT A +0.1 kiwi +1+1 5");
    zmsg_addstr (msg, "7");
    assert (herd_bus_msg_decode (msg, &decoded) == HERD_BUS_MSG_UPDATE);
    assert (decoded.has_sequence && decoded.sequence == 7);
    assert (decoded.at.client.size == 4 && !memcmp (decoded.at.client.start, "kiwi", 4));
    zmsg_destroy (&msg);
    assert (s_decode (&decoded, "kiwi", "AT A +0.1 kiwi +1+1 5", NULL) == HERD_BUS_MSG_UPDATE);
    assert (!decoded.has_sequence);
    //  Malformed, each for its own reason
    assert (s_decode (&decoded, "kiwi", NULL) == HERD_BUS_MSG_INVALID);
    assert (s_decode (&decoded, "pear", "AT A +0.1 kiwi +1+1 5", "7", NULL) == HERD_BUS_MSG_INVALID);
    assert (streq (decoded.reason, "first frame is not the line's client"));
    assert (s_decode (&decoded, "kiwi", "IAMAT kiwi +1+1 5", NULL) == HERD_BUS_MSG_INVALID);
    //  A sequence that is not a number (or past 2^64) is ignored
    assert (s_decode (&decoded, "kiwi", "AT A +0.1 kiwi +1+1 5", "-7", NULL) == HERD_BUS_MSG_UPDATE);
    assert (!decoded.has_sequence);
    assert (s_decode (&decoded, "kiwi", "AT A +0.1 kiwi +1+1 5", "99999999999999999999", NULL)
            == HERD_BUS_MSG_UPDATE);
    assert (!decoded.has_sequence);
    assert (s_decode (&decoded, "", "HEARTBEAT", "A", NULL) == HERD_BUS_MSG_INVALID);
    assert (s_decode (&decoded, "", "HELLO", "A", "1", NULL) == HERD_BUS_MSG_INVALID);
    assert (s_decode (&decoded, "", "HEARTBEAT", "", "1", NULL) == HERD_BUS_MSG_INVALID);
    assert (s_decode (&decoded, "", "HEARTBEAT", "A", "1", "more", NULL) == HERD_BUS_MSG_INVALID);
    //  Further frames of an update are the publisher's business
    assert (s_decode (&decoded, "kiwi", "AT A +0.1 kiwi +1+1 5", "7", "x", "y", "z", NULL)
            == HERD_BUS_MSG_UPDATE);
    assert (decoded.sequence == 7);
    printf ("OK\n");
}
