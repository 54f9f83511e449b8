//  bus/herd_sync_msg.h: the catch-up messages (see bus/herd_snapshot.h
//  for the exchange), encoded and decoded in one place, Malamute-style,
//  so neither side hand-parses the wire. Each message is one frame of
//  text, ids in decimal:
//      SYNC    "SYNC <id>"                     asker: send me a snapshot
//      MORE    "MORE <id>"                     asker: one more chunk, please
//      CHUNK   "CHUNK <id>\n<AT line>\n..."    answerer: some lines
//      DONE    "DONE <id> <count>"             answerer: all <count> sent

#ifndef HERD_SYNC_MSG_H_INCLUDED
#define HERD_SYNC_MSG_H_INCLUDED

typedef enum {
    HERD_SYNC_MSG_SYNC = 1,
    HERD_SYNC_MSG_MORE,
    HERD_SYNC_MSG_CHUNK,
    HERD_SYNC_MSG_DONE
} herd_sync_msg_kind_t;

typedef struct _herd_sync_msg_t herd_sync_msg_t;

herd_sync_msg_t *
    herd_sync_msg_new (herd_sync_msg_kind_t kind, uint64_t id);

void
    herd_sync_msg_destroy (herd_sync_msg_t **self_p);

//  Decodes one frame's bytes. NULL if they are not a well-formed message
//  (peer input: never asserts). Caller destroys.
herd_sync_msg_t *
    herd_sync_msg_decode (const void *data, size_t size);

//  The message as one frame. Caller owns.
zframe_t *
    herd_sync_msg_encode (herd_sync_msg_t *self);

herd_sync_msg_kind_t
    herd_sync_msg_kind (herd_sync_msg_t *self);

uint64_t
    herd_sync_msg_id (herd_sync_msg_t *self);

//  DONE: lines the snapshot held
uint64_t
    herd_sync_msg_count (herd_sync_msg_t *self);

void
    herd_sync_msg_set_count (herd_sync_msg_t *self, uint64_t count);

//  CHUNK: appends one line (no line ending inside it)
void
    herd_sync_msg_add_line (herd_sync_msg_t *self, const char *line, size_t size);

//  CHUNK: lines held
size_t
    herd_sync_msg_lines (herd_sync_msg_t *self);

//  CHUNK: walks the lines, first call after decode gives the first; NULL
//  after the last. Null-terminated, borrowed until destroy.
const char *
    herd_sync_msg_next_line (herd_sync_msg_t *self, size_t *size);

void
    herd_sync_msg_test (bool verbose);

#endif
