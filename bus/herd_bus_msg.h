//  bus/herd_bus_msg.h: the bus messages (PROTOCOL.md, "the update bus"),
//  decoded in one place so the peer never hand-parses the wire, and so
//  they can be fuzzed (tests/fuzz_bus_msg.c). Multipart, on a PUB socket:
//      update      [client][AT line][sequence]      (sequence optional,
//                                                    for publishers that
//                                                    are not herd servers;
//                                                    one that is not a
//                                                    number is ignored)
//      heartbeat   [""][HEARTBEAT][server][sequence]
//  The first frame of an update is the client id, so monitors can
//  subscribe to one client; an update whose first frame is not its AT
//  line's client is malformed.

#ifndef HERD_BUS_MSG_H_INCLUDED
#define HERD_BUS_MSG_H_INCLUDED

typedef enum {
    HERD_BUS_MSG_INVALID = 0,
    HERD_BUS_MSG_UPDATE,
    HERD_BUS_MSG_HEARTBEAT
} herd_bus_msg_kind_t;

typedef struct {
    herd_bus_msg_kind_t kind;
    herd_at_t at;               //  UPDATE: the line's fields, in msg's frames
    bool has_sequence;          //  UPDATE: a number came with it
    uint64_t sequence;          //  The publisher's number
    const char *reason;         //  INVALID: why, static text
} herd_bus_msg_t;

//  One frame of a message as received, borrowed
typedef struct {
    const void *data;
    size_t size;
} herd_bus_frame_t;

//  No message has a use for more frames than this; a decoder needs to
//  see one more than a heartbeat has, to refuse it
#define HERD_BUS_MSG_FRAMES_MAX     5

//  Decodes a message's first count frames (at most HERD_BUS_MSG_FRAMES_MAX
//  matter; peer input: never asserts) into *decoded, whose fields point
//  into the frames. Returns decoded->kind.
herd_bus_msg_kind_t
    herd_bus_msg_decode_frames (const herd_bus_frame_t *frames, size_t count, herd_bus_msg_t *decoded);

//  The same for a zmsg_t
herd_bus_msg_kind_t
    herd_bus_msg_decode (zmsg_t *msg, herd_bus_msg_t *decoded);

//  A heartbeat from server carrying its last sequence number. Caller
//  sends or destroys.
zmsg_t *
    herd_bus_msg_heartbeat (const char *server, uint64_t sequence);

void
    herd_bus_msg_test (bool verbose);

#endif
