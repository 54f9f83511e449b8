//  tests/fuzz_protocol.c: libFuzzer target for the client line parser and
//  the update line parser, AT and GONE (make fuzz; needs clang). Every
//  input must parse to a kind without crashing, a parsed IAMAT must give
//  back fields that lie inside the input and values in range, and a
//  FORGET's GONE line must parse back to the same client and time.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *line = (const char *) data;
    herd_command_t command;
    herd_protocol_parse (line, size, &command);
    if (command.kind == HERD_LINE_IAMAT) {
        assert (command.client.start >= line && command.client.start + command.client.size <= line + size);
        assert (command.latitude >= -90 && command.latitude <= 90);
        assert (command.longitude >= -180 && command.longitude <= 180);
        struct timespec now = { 1700000000, 0 };
        char skew [48];
        herd_protocol_skew (&now, command.time, skew, sizeof skew);
        assert (skew [0] == '+' || skew [0] == '-');
    }
    if (command.kind == HERD_LINE_WHATSAT)
        assert (command.radius_km > 0 && command.radius_km <= 50
             && command.max_results >= 1 && command.max_results <= 20);
    if (command.kind == HERD_LINE_FORGET) {
        char gone [600];
        struct timespec now = { 1700000000, 0 };
        herd_at_t made, again;
        int made_size = herd_protocol_format_gone (gone, sizeof gone, "Bailey", &now, command.client,
                                                   command.time, &made);
        assert (made_size > 0 && made.gone);
        assert (herd_protocol_parse_at (gone, (size_t) made_size, &again) == 0 && again.gone);
        assert (again.client.size == command.client.size
             && memcmp (again.client.start, command.client.start, command.client.size) == 0);
        assert (herd_protocol_time_compare (again.time, command.time) == 0);
    }
    herd_at_t at;
    if (herd_protocol_parse_at (line, size, &at) == 0) {
        assert (herd_protocol_time_compare (at.time, at.time) == 0);
        assert (at.gone == (at.coordinates.size == 0));
        herd_at_t peeked;
        assert (herd_protocol_peek_at (line, size, &peeked) == 0 && herd_protocol_check_peeked (&peeked) == 0);
        assert (!memcmp (&peeked, &at, sizeof at));
    }
    return 0;
}
