//  tests/fuzz_bus_msg.c: libFuzzer target for bus messages. The input is
//  cut into frames, each a length byte and that many bytes (the rest if
//  fewer remain); whatever a neighbour publishes must decode to an update,
//  a heartbeat or a reason, never crash.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    while (size) {
        size_t frame_size = data [0] < size - 1? data [0]: size - 1;
        zmsg_addmem (msg, data + 1, frame_size);
        data += 1 + frame_size;
        size -= 1 + frame_size;
    }
    herd_bus_msg_t decoded;
    herd_bus_msg_kind_t kind = herd_bus_msg_decode (msg, &decoded);
    if (kind == HERD_BUS_MSG_UPDATE) {
        //  What the store will take: a line that parses again the same
        herd_at_t again;
        assert (herd_protocol_parse_at (decoded.at.line.start, decoded.at.line.size, &again) == 0);
        assert (again.client.size == decoded.at.client.size);
    }
    else
    if (kind == HERD_BUS_MSG_INVALID)
        assert (decoded.reason && *decoded.reason);
    zmsg_destroy (&msg);
    return 0;
}
