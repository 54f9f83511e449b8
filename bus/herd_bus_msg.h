//  bus/herd_bus_msg.h: the one codec of the bus and the feed (docs/PROTOCOL.md,
//  sections 2 and 3). Nothing else in herd builds or parses their frames:
//  the bus and the feed send through it, the peers and herd-monitor
//  decode through it, and tests/fuzz_bus_msg.c fuzzes it.
//
//  Between servers (a server's bus socket), every message is one frame of
//  text, so CURVE seals one box per message whatever it carries:
//      batch       "BATCH/2 <server> <sequence> <count>\n" then count
//                  update lines (AT, GONE), each ended by "\n": every
//                  update the server accepted in one pass of its loop
//      heartbeat   "HEARTBEAT/2 <server> <sequence>"
//  The number after the kind is the bus format (HERD_BUS_FORMAT); format
//  1 wrote none. A message of another format is FOREIGN: its server and
//  format are read, nothing else.
//  The sequence numbers the batches a server has sent since it started; a
//  heartbeat repeats the last, so a receiver sees a gap even when no batch
//  follows it.
//
//  To monitors (a server's feed socket), every update accepted is one
//  message of two frames, so a ZeroMQ prefix subscription gets one client:
//      update      [client id][AT line]

#ifndef HERD_BUS_MSG_H_INCLUDED
#define HERD_BUS_MSG_H_INCLUDED

typedef enum {
    HERD_BUS_MSG_INVALID = 0,
    HERD_BUS_MSG_BATCH,
    HERD_BUS_MSG_HEARTBEAT,
    HERD_BUS_MSG_UPDATE,        //  A feed message
    HERD_BUS_MSG_FOREIGN        //  A batch or heartbeat of another bus format
} herd_bus_msg_kind_t;

typedef struct {
    herd_bus_msg_kind_t kind;
    herd_field_t server;        //  BATCH, HEARTBEAT: who sent it
    uint64_t sequence;          //  BATCH, HEARTBEAT: its number
    uint64_t format;            //  BATCH, HEARTBEAT, FOREIGN: the bus format
    size_t count;               //  BATCH: AT lines it holds
    herd_at_t at;               //  UPDATE: the line's fields
    const char *reason;         //  INVALID: why, static text
    const char *cursor;         //  BATCH: the next line, for herd_bus_msg_next
    const char *end;            //  BATCH: past its last line
} herd_bus_msg_t;

//  One frame of a message as received, borrowed
typedef struct {
    const void *data;
    size_t size;
} herd_bus_frame_t;

//  A server message is one frame; a decoder sees one more to refuse it
#define HERD_BUS_MSG_FRAMES_MAX     3

//  Bytes of AT lines a batch holds at most: past it a pass's updates go
//  in several batches. Small enough that a subscriber's queue of bus/hwm
//  batches stays bounded, big enough that a box carries hundreds.
#define HERD_BUS_BATCH_BYTES        (32 * 1024)

//  Decodes a server message from a neighbour's bus: its first count
//  frames (peer input: never asserts). Fields point into the frames; keep
//  them while decoded is used. Returns decoded->kind.
herd_bus_msg_kind_t
    herd_bus_msg_decode (const herd_bus_frame_t *frames, size_t count, herd_bus_msg_t *decoded);

//  A BATCH's next line, into *line (pointing into the frame): 1, or 0
//  past the last. Not parsed: a receiver compares it newer-wins first,
//  and parses only what it will store (herd_protocol_peek_at, then
//  herd_protocol_parse_at).
int
    herd_bus_msg_next (herd_bus_msg_t *decoded, herd_field_t *line);

//  Decodes a feed message ([client id][AT line]; server input for a
//  monitor: never asserts). Returns HERD_BUS_MSG_UPDATE or INVALID.
herd_bus_msg_kind_t
    herd_bus_msg_decode_feed (const herd_bus_frame_t *frames, size_t count, herd_bus_msg_t *decoded);

//  Receives one message from a ZeroMQ socket without waiting: its first
//  HERD_BUS_MSG_FRAMES_MAX frames into parts (each to be closed with
//  zmq_msg_close), and frames pointing into them, ready to decode; the
//  rest dropped. Returns how many, 0 if none waited. Allocates nothing: a
//  whole message arrives at once.
size_t
    herd_bus_msg_receive (void *handle, zmq_msg_t *parts, herd_bus_frame_t *frames);

//  A feed message received and decoded: decoded points into parts
typedef struct {
    zmq_msg_t parts [HERD_BUS_MSG_FRAMES_MAX];
    size_t count;
    herd_bus_msg_t decoded;
} herd_bus_feed_msg_t;

//  Receives one feed message without waiting and decodes it: 1 if it is
//  an update (in message->decoded, until herd_bus_msg_feed_close), 0 if
//  none waited, -1 if it was no update (already let go of)
int
    herd_bus_msg_receive_feed (void *handle, herd_bus_feed_msg_t *message);

//  Lets go of what a received feed message holds
void
    herd_bus_msg_feed_close (herd_bus_feed_msg_t *message);

//  Sends a heartbeat on a publishing socket (never waits). 0 or -1.
int
    herd_bus_msg_send_heartbeat (void *handle, const char *server, uint64_t sequence);

//  Sends one update on a feed socket (never waits). 0 or -1.
int
    herd_bus_msg_send_feed (void *handle, const herd_at_t *at);

//  A batch being filled, sent once a loop pass
typedef struct _herd_bus_batch_t herd_bus_batch_t;

herd_bus_batch_t *
    herd_bus_batch_new (const char *server);

void
    herd_bus_batch_destroy (herd_bus_batch_t **self_p);

//  Adds an AT line. false if it does not fit: send the batch, then add it
//  again (a line too big for any batch never fits).
bool
    herd_bus_batch_add (herd_bus_batch_t *self, const char *line, size_t size);

//  AT lines held
size_t
    herd_bus_batch_count (herd_bus_batch_t *self);

//  Sends what it holds as one message numbered sequence, never waiting,
//  and empties it. 0, or -1 if the socket did not take it (emptied too:
//  the receivers see the gap and catch up). With no socket (handle NULL,
//  while it is bound again) it only empties, and the number is skipped.
int
    herd_bus_batch_send (herd_bus_batch_t *self, void *handle, uint64_t sequence);

void
    herd_bus_msg_test (bool verbose);

#endif
