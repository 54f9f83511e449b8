//  tests/fuzz_places_msg.c: libFuzzer target for the places codec. Any
//  bytes must decode to a message or be refused with a reason, never
//  crash; a message that decodes encodes back to the same bytes. (A
//  RESULT's pointer is carried, never followed: only a worker makes one.)

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    herd_places_msg_t message;
    if (herd_places_msg_decode (data, size, &message) == HERD_PLACES_MSG_INVALID) {
        assert (message.reason && *message.reason);
        return 0;
    }
    zframe_t *frame = herd_places_msg_encode (&message);
    assert (zframe_size (frame) == size);
    assert (memcmp (zframe_data (frame), data, size) == 0);
    zframe_destroy (&frame);
    if (message.kind == HERD_PLACES_MSG_QUERY) {
        assert (message.query.max_results >= 1 && message.query.max_results <= HERD_RESULTS_MAX);
        assert (message.query.radius_m > 0);
    }
    return 0;
}
