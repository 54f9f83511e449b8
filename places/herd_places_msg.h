//  places/herd_places_msg.h: the one codec of the places messages, between
//  a server's loop and its places broker, and between the broker and its
//  workers (all inproc, between threads of one process). Nothing else
//  builds or parses their frames; tests/fuzz_places_msg.c fuzzes it.
//
//  Every message is one frame (after the ROUTER's routing id), its first
//  byte the kind, then a request id of 8 bytes, big-endian; numbers are
//  big-endian too, doubles as their IEEE 754 bits:
//      QUERY   'Q' id  latitude longitude radius_m (3 doubles) max_results (4)
//      ANSWER  'A' id  the response JSON text, as the client gets it
//      STATS   'S' id  (asks the broker for its counters)
//      COUNTS  'C' id  the counters, JSON text
//      RESULT  'R' id  a json_t pointer: a worker's response, handed over
//                      whole to the broker (it caches it, and cuts it to
//                      each asker's max_results), never written as text
//                      until the broker answers
//      READY   'W' id  a worker is idle (id 0, sent once)
//  The request id is the asker's own (a client's, a STATS asker's) from
//  the loop to the broker and back, and the broker's job id to a worker.

#ifndef HERD_PLACES_MSG_H_INCLUDED
#define HERD_PLACES_MSG_H_INCLUDED

typedef enum {
    HERD_PLACES_MSG_INVALID = 0,
    HERD_PLACES_MSG_QUERY,
    HERD_PLACES_MSG_ANSWER,
    HERD_PLACES_MSG_STATS,
    HERD_PLACES_MSG_COUNTS,
    HERD_PLACES_MSG_RESULT,
    HERD_PLACES_MSG_READY
} herd_places_msg_kind_t;

typedef struct {
    herd_places_msg_kind_t kind;
    uint64_t id;                //  The asker's request id, or a job id
    herd_query_t query;         //  QUERY
    const char *text;           //  ANSWER, COUNTS: JSON text, not terminated
    size_t text_size;
    json_t *response;           //  RESULT: a worker's response (owned by
                                //  whoever received it)
    const char *reason;         //  INVALID: why, static text
} herd_places_msg_t;

//  Decodes one frame. Fields point into data: keep it while decoded is
//  used. Never asserts, whatever the bytes. Returns decoded->kind.
herd_places_msg_kind_t
    herd_places_msg_decode (const void *data, size_t size, herd_places_msg_t *decoded);

//  Encodes a message as one frame. Caller owns it.
zframe_t *
    herd_places_msg_encode (const herd_places_msg_t *message);

//  Sends a message on a socket (after routing, a frame the caller gives
//  for a ROUTER, or NULL), never waiting. 0, or -1 if the socket did not
//  take it. A RESULT's response passes to the receiver only if it is sent.
int
    herd_places_msg_send (zsock_t *socket, zframe_t *routing, const herd_places_msg_t *message);

//  Receives one message: routing (for a ROUTER, caller owns) and the frame
//  (caller owns), decoded into *decoded, fields pointing into *frame_p.
//  Returns the kind; INVALID if none came or it did not decode.
herd_places_msg_kind_t
    herd_places_msg_recv (zsock_t *socket, zframe_t **routing_p, zframe_t **frame_p,
                          herd_places_msg_t *decoded);

void
    herd_places_msg_test (bool verbose);

#endif
