//  places/herd_places_msg.c: the places codec.

#include "places/herd_places_layer.h"
#include <math.h>

#define S_HEADER        9           //  Kind and request id
#define S_QUERY         (S_HEADER + 3 * 8 + 4)
#define S_RESULT        (S_HEADER + sizeof (json_t *))

static const char s_kinds [] = { 0, 'Q', 'A', 'S', 'C', 'R', 'W' };

static uint64_t
s_get64 (const uint8_t *at)
{
    uint64_t value = 0;
    for (int byte = 0; byte < 8; byte++)
        value = value << 8 | at [byte];
    return value;
}

static void
s_put64 (uint8_t *at, uint64_t value)
{
    for (int byte = 7; byte >= 0; byte--, value >>= 8)
        at [byte] = (uint8_t) value;
}

static double
s_get_double (const uint8_t *at)
{
    uint64_t bits = s_get64 (at);
    double value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

static void
s_put_double (uint8_t *at, double value)
{
    uint64_t bits;
    memcpy (&bits, &value, sizeof bits);
    s_put64 (at, bits);
}

static herd_places_msg_kind_t
s_invalid (herd_places_msg_t *decoded, const char *reason)
{
    decoded->kind = HERD_PLACES_MSG_INVALID;
    decoded->reason = reason;
    return decoded->kind;
}

herd_places_msg_kind_t
herd_places_msg_decode (const void *data, size_t size, herd_places_msg_t *decoded)
{
    assert (decoded);
    memset (decoded, 0, sizeof *decoded);
    const uint8_t *bytes = (const uint8_t *) data;
    if (!bytes || size < S_HEADER)
        return s_invalid (decoded, "shorter than a header");
    herd_places_msg_kind_t kind = HERD_PLACES_MSG_INVALID;
    for (size_t index = 1; index < sizeof s_kinds; index++)
        if (bytes [0] == (uint8_t) s_kinds [index])
            kind = (herd_places_msg_kind_t) index;
    if (kind == HERD_PLACES_MSG_INVALID)
        return s_invalid (decoded, "unknown kind");
    decoded->id = s_get64 (bytes + 1);
    const uint8_t *body = bytes + S_HEADER;
    size_t body_size = size - S_HEADER;
    switch (kind) {
        case HERD_PLACES_MSG_QUERY: {
            if (size != S_QUERY)
                return s_invalid (decoded, "a query of the wrong size");
            herd_query_t *query = &decoded->query;
            query->latitude = s_get_double (body);
            query->longitude = s_get_double (body + 8);
            query->radius_m = s_get_double (body + 16);
            query->max_results = (uint32_t) body [24] << 24 | (uint32_t) body [25] << 16
                               | (uint32_t) body [26] << 8 | body [27];
            //  Comparisons false for NaN: a NaN fails each
            if (!(query->latitude >= -90 && query->latitude <= 90)
            ||  !(query->longitude >= -180 && query->longitude <= 180))
                return s_invalid (decoded, "a query off the globe");
            if (!(query->radius_m > 0 && query->radius_m <= HERD_RADIUS_KM_MAX * 1000))
                return s_invalid (decoded, "a query radius out of range");
            if (query->max_results < 1 || query->max_results > HERD_RESULTS_MAX)
                return s_invalid (decoded, "a query result count out of range");
            break;
        }
        case HERD_PLACES_MSG_ANSWER:
        case HERD_PLACES_MSG_COUNTS:
            if (body_size == 0 || memchr (body, 0, body_size))
                return s_invalid (decoded, "an empty text, or one holding a NUL");
            decoded->text = (const char *) body;
            decoded->text_size = body_size;
            break;
        case HERD_PLACES_MSG_RESULT:
            if (size != S_RESULT)
                return s_invalid (decoded, "a result of the wrong size");
            memcpy (&decoded->response, body, sizeof decoded->response);
            if (!decoded->response)
                return s_invalid (decoded, "a result with no response");
            break;
        case HERD_PLACES_MSG_STATS:
        case HERD_PLACES_MSG_READY:
            if (body_size)
                return s_invalid (decoded, "a body where none belongs");
            break;
        default:
            break;
    }
    decoded->kind = kind;
    return kind;
}

zframe_t *
herd_places_msg_encode (const herd_places_msg_t *message)
{
    assert (message && message->kind != HERD_PLACES_MSG_INVALID);
    size_t size = S_HEADER;
    if (message->kind == HERD_PLACES_MSG_QUERY)
        size = S_QUERY;
    else
    if (message->kind == HERD_PLACES_MSG_ANSWER || message->kind == HERD_PLACES_MSG_COUNTS)
        size += message->text_size;
    else
    if (message->kind == HERD_PLACES_MSG_RESULT)
        size = S_RESULT;
    zframe_t *frame = zframe_new (NULL, size);
    uint8_t *bytes = zframe_data (frame);
    bytes [0] = (uint8_t) s_kinds [message->kind];
    s_put64 (bytes + 1, message->id);
    uint8_t *body = bytes + S_HEADER;
    if (message->kind == HERD_PLACES_MSG_QUERY) {
        s_put_double (body, message->query.latitude);
        s_put_double (body + 8, message->query.longitude);
        s_put_double (body + 16, message->query.radius_m);
        uint32_t count = message->query.max_results;
        for (int byte = 0; byte < 4; byte++)
            body [24 + byte] = (uint8_t) (count >> (8 * (3 - byte)));
    }
    else
    if (message->kind == HERD_PLACES_MSG_ANSWER || message->kind == HERD_PLACES_MSG_COUNTS)
        memcpy (body, message->text, message->text_size);
    else
    if (message->kind == HERD_PLACES_MSG_RESULT)
        memcpy (body, &message->response, sizeof message->response);
    return frame;
}

int
herd_places_msg_send (zsock_t *socket, zframe_t *routing, const herd_places_msg_t *message)
{
    assert (socket && message);
    zframe_t *frame = herd_places_msg_encode (message);
    if (routing) {
        zframe_t *copy = zframe_dup (routing);
        if (zframe_send (&copy, socket, ZFRAME_MORE | ZFRAME_DONTWAIT) == -1) {
            zframe_destroy (&copy);
            zframe_destroy (&frame);
            return -1;
        }
    }
    //  A ROUTER's message goes whole or not at all once its first frame went
    int rc = zframe_send (&frame, socket, ZFRAME_DONTWAIT);
    zframe_destroy (&frame);
    return rc;
}

herd_places_msg_kind_t
herd_places_msg_recv (zsock_t *socket, zframe_t **routing_p, zframe_t **frame_p,
                      herd_places_msg_t *decoded)
{
    assert (socket && frame_p && decoded);
    memset (decoded, 0, sizeof *decoded);
    *frame_p = NULL;
    zmsg_t *msg = zmsg_recv (socket);
    if (!msg)
        return s_invalid (decoded, "nothing received");
    if (routing_p)
        *routing_p = zmsg_pop (msg);
    *frame_p = zmsg_pop (msg);
    size_t extra = zmsg_size (msg);
    zmsg_destroy (&msg);
    if (!*frame_p || extra)
        return s_invalid (decoded, "not one frame");
    return herd_places_msg_decode (zframe_data (*frame_p), zframe_size (*frame_p), decoded);
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_test_round_trip (const herd_places_msg_t *message)
{
    zframe_t *frame = herd_places_msg_encode (message);
    herd_places_msg_t decoded;
    assert (herd_places_msg_decode (zframe_data (frame), zframe_size (frame), &decoded) == message->kind);
    assert (decoded.id == message->id);
    zframe_t *again = herd_places_msg_encode (&decoded);
    assert (zframe_eq (frame, again));
    zframe_destroy (&again);
    zframe_destroy (&frame);
}

void
herd_places_msg_test (bool verbose)
{
    printf (" * herd_places_msg: ");
    if (verbose)
        printf ("\n");
    herd_places_msg_t message = { HERD_PLACES_MSG_QUERY, 0x0102030405060708ULL,
                                  { 34.068930, -118.445127, 10000, 5 }, NULL, 0, NULL, NULL };
    s_test_round_trip (&message);
    //  The wire is fixed: kind, id big-endian, doubles' bits big-endian
    zframe_t *frame = herd_places_msg_encode (&message);
    assert (zframe_size (frame) == S_QUERY);
    const uint8_t *bytes = zframe_data (frame);
    assert (bytes [0] == 'Q' && bytes [1] == 1 && bytes [8] == 8);
    assert (bytes [S_QUERY - 1] == 5 && bytes [S_QUERY - 4] == 0);
    herd_places_msg_t decoded;
    herd_places_msg_decode (bytes, S_QUERY, &decoded);
    assert (decoded.query.latitude == 34.068930 && decoded.query.longitude == -118.445127);
    assert (decoded.query.radius_m == 10000 && decoded.query.max_results == 5);
    //  Anything cut short, or out of range, is refused with a reason
    assert (herd_places_msg_decode (bytes, S_QUERY - 1, &decoded) == HERD_PLACES_MSG_INVALID);
    uint8_t bad [S_QUERY];
    memcpy (bad, bytes, S_QUERY);
    bad [S_QUERY - 1] = 21;
    assert (herd_places_msg_decode (bad, S_QUERY, &decoded) == HERD_PLACES_MSG_INVALID);
    assert (streq (decoded.reason, "a query result count out of range"));
    memcpy (bad, bytes, S_QUERY);
    memset (bad + S_HEADER, 0xff, 8);               //  A NaN latitude
    assert (herd_places_msg_decode (bad, S_QUERY, &decoded) == HERD_PLACES_MSG_INVALID);
    bad [0] = 'X';
    assert (herd_places_msg_decode (bad, S_QUERY, &decoded) == HERD_PLACES_MSG_INVALID);
    zframe_destroy (&frame);

    const char *json = "{\"results\": [], \"status\": \"ZERO_RESULTS\"}";
    herd_places_msg_t answer = { .kind = HERD_PLACES_MSG_ANSWER, .id = 7,
                                 .text = json, .text_size = strlen (json) };
    s_test_round_trip (&answer);
    frame = herd_places_msg_encode (&answer);
    herd_places_msg_decode (zframe_data (frame), zframe_size (frame), &decoded);
    assert (decoded.text_size == strlen (json) && !memcmp (decoded.text, json, strlen (json)));
    zframe_destroy (&frame);
    answer.text_size = 0;
    frame = herd_places_msg_encode (&answer);
    assert (herd_places_msg_decode (zframe_data (frame), zframe_size (frame), &decoded) == HERD_PLACES_MSG_INVALID);
    zframe_destroy (&frame);

    herd_places_msg_t stats = { .kind = HERD_PLACES_MSG_STATS, .id = 9 };
    s_test_round_trip (&stats);
    herd_places_msg_t ready = { .kind = HERD_PLACES_MSG_READY, .id = 0 };
    s_test_round_trip (&ready);

    //  A RESULT hands the response itself to the other thread
    json_t *response = herd_nearby_error ("test");
    herd_places_msg_t result = { .kind = HERD_PLACES_MSG_RESULT, .id = 3, .response = response };
    zsock_t *router = zsock_new_router ("inproc://herd-places-msg-test");
    zsock_t *dealer = zsock_new_dealer ("inproc://herd-places-msg-test");
    assert (router && dealer);
    assert (herd_places_msg_send (dealer, NULL, &result) == 0);
    zframe_t *routing = NULL;
    assert (herd_places_msg_recv (router, &routing, &frame, &decoded) == HERD_PLACES_MSG_RESULT);
    assert (decoded.response == response && decoded.id == 3);
    json_decref (decoded.response);
    zframe_destroy (&frame);
    //  And a ROUTER answers through the routing id it got
    answer.text_size = strlen (json);
    assert (herd_places_msg_send (router, routing, &answer) == 0);
    zframe_destroy (&routing);
    assert (herd_places_msg_recv (dealer, NULL, &frame, &decoded) == HERD_PLACES_MSG_ANSWER);
    assert (decoded.id == 7 && decoded.text_size == strlen (json));
    zframe_destroy (&frame);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
    printf ("OK\n");
}
