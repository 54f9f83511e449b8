//  tests/fuzz_sync_msg.c: libFuzzer target for the catch-up codec. Any
//  bytes a neighbour sends must decode to a message or be refused with a
//  reason, never crash; a message that decodes encodes back to the same
//  bytes, and its lines are as many as it says.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    herd_sync_msg_t message;
    if (herd_sync_msg_decode (data, size, &message) == HERD_SYNC_MSG_INVALID) {
        assert (message.reason && *message.reason);
        return 0;
    }
    zframe_t *frame = herd_sync_msg_encode (&message);
    assert (zframe_size (frame) == size);
    assert (memcmp (zframe_data (frame), data, size) == 0);
    zframe_destroy (&frame);
    size_t lines = 0;
    herd_field_t line;
    while (herd_sync_msg_next (&message, &line)) {
        assert (line.start >= (const char *) data && line.start + line.size <= (const char *) data + size);
        assert (!memchr (line.start, '\n', line.size));
        lines++;
    }
    assert (lines == message.line_count);
    return 0;
}
