//  tests/fuzz_bus_msg.c: libFuzzer target for the bus and feed codec. The
//  input is cut into frames, each a length byte and that many bytes (the
//  rest if fewer remain); whatever a neighbour sends on the bus, or a
//  server on its feed, must decode to a message or a reason, never crash,
//  and every line a batch yields is
//  one line, on which the peek and the parse agree.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    herd_bus_frame_t frames [8];
    size_t count = 0;
    while (size && count < 8) {
        size_t frame_size = data [0] < size - 1? data [0]: size - 1;
        //  One byte 255 means: the rest is one frame (batches are long)
        if (data [0] == 255)
            frame_size = size - 1;
        frames [count].data = data + 1;
        frames [count++].size = frame_size;
        data += 1 + frame_size;
        size -= 1 + frame_size;
    }
    herd_bus_msg_t decoded;
    herd_bus_msg_kind_t kind = herd_bus_msg_decode (frames, count, &decoded);
    if (kind == HERD_BUS_MSG_BATCH) {
        herd_field_t line;
        size_t lines = 0;
        while (herd_bus_msg_next (&decoded, &line)) {
            //  What a receiver does with each: peek, then parse; the two
            //  must agree on the client
            herd_at_t peeked, at;
            assert (memchr (line.start, '\n', line.size) == NULL);
            int parsed = herd_protocol_parse_at (line.start, line.size, &at);
            if (herd_protocol_peek_at (line.start, line.size, &peeked) == 0)
                assert ((herd_protocol_check_peeked (&peeked) == 0) == (parsed == 0));
            else
                assert (parsed == -1);
            lines++;
        }
        assert (lines == decoded.count);
    }
    else
    if (kind == HERD_BUS_MSG_INVALID)
        assert (decoded.reason && *decoded.reason);
    kind = herd_bus_msg_decode_feed (frames, count, &decoded);
    if (kind == HERD_BUS_MSG_UPDATE)
        assert (decoded.at.client.size == frames [0].size);
    else
        assert (kind == HERD_BUS_MSG_INVALID && decoded.reason && *decoded.reason);
    return 0;
}
