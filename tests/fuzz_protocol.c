//  tests/fuzz_protocol.c: libFuzzer target for the client line parser and
//  the AT line parser (make fuzz; needs clang). Every input must parse to
//  a kind without crashing, and a parsed IAMAT must give back fields that
//  lie inside the input and values in range.

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
    herd_at_t at;
    if (herd_protocol_parse_at (line, size, &at) == 0)
        assert (herd_protocol_time_compare (at.time, at.time) == 0);
    return 0;
}
