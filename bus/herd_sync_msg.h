//  bus/herd_sync_msg.h: the catch-up messages (see bus/herd_snapshot.h
//  for the exchange), encoded and decoded in one place, so neither side
//  hand-parses the wire. In the shape of every herd codec (bus/herd_bus_msg,
//  places/herd_places_msg): a message is a value struct, decoded from a
//  frame with its fields pointing into it (peer input: never asserts),
//  and encoded from the same struct. Each message is one frame of
//  text, ids in decimal:
//      SYNC    "SYNC <id>"                     asker: send me a snapshot
//      MORE    "MORE <id>"                     asker: one more chunk, please
//      CHUNK   "CHUNK <id>\n<AT line>\n..."    answerer: some lines
//      DONE    "DONE <id> <count>"             answerer: all <count> sent

#ifndef HERD_SYNC_MSG_H_INCLUDED
#define HERD_SYNC_MSG_H_INCLUDED

typedef enum {
    HERD_SYNC_MSG_INVALID = 0,
    HERD_SYNC_MSG_SYNC,
    HERD_SYNC_MSG_MORE,
    HERD_SYNC_MSG_CHUNK,
    HERD_SYNC_MSG_DONE
} herd_sync_msg_kind_t;

typedef struct {
    herd_sync_msg_kind_t kind;
    uint64_t id;                //  The request it belongs to
    uint64_t count;             //  DONE: lines the snapshot held
    const char *lines;          //  CHUNK: its lines, one \n between each (none
    size_t lines_size;          //  after the last); NULL: no line
    size_t line_count;          //  CHUNK, decoded: how many
    const char *cursor;         //  CHUNK, decoded: the next for herd_sync_msg_next
    const char *reason;         //  INVALID: why (static text)
} herd_sync_msg_t;

//  Decodes one frame's bytes into decoded (its lines point into data: keep
//  it while decoded is used). Returns decoded->kind, INVALID with a reason
//  if they are not a well-formed message.
herd_sync_msg_kind_t
    herd_sync_msg_decode (const void *data, size_t size, herd_sync_msg_t *decoded);

//  The message as one frame. Caller owns.
zframe_t *
    herd_sync_msg_encode (const herd_sync_msg_t *message);

//  A decoded CHUNK's next line into *line (pointing into the frame): 1, or
//  0 past the last
int
    herd_sync_msg_next (herd_sync_msg_t *decoded, herd_field_t *line);

void
    herd_sync_msg_test (bool verbose);

#endif
