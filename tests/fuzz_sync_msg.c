//  tests/fuzz_sync_msg.c: libFuzzer target for the catch-up codec. Any
//  bytes a neighbour sends must decode to a message or to NULL, never
//  crash; a message that decodes encodes back to the same bytes.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    herd_sync_msg_t *message = herd_sync_msg_decode (data, size);
    if (message) {
        zframe_t *frame = herd_sync_msg_encode (message);
        assert (zframe_size (frame) == size);
        assert (memcmp (zframe_data (frame), data, size) == 0);
        zframe_destroy (&frame);
        size_t lines = 0;
        while (herd_sync_msg_next_line (message, NULL))
            lines++;
        assert (lines == herd_sync_msg_lines (message));
        herd_sync_msg_destroy (&message);
    }
    return 0;
}
