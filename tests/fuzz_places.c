//  tests/fuzz_places.c: libFuzzer target for the places data loader. Any
//  file must load or fail with one line, never crash; what loads must
//  answer searches, the index agreeing with the scan.
//
//  The first input byte picks the mode. Odd: the rest is the file as is.
//  Even: the rest is records and strings, and the harness writes a header
//  that matches them (magic, sizes, checksum), so the fuzzer gets past the
//  checksum to the record checks and the index.

#include "../herd_classes.h"

#define S_HEADER    24
#define S_RECORD    24

static void
s_put32 (uint8_t *at, uint32_t value)
{
    for (int byte = 0; byte < 4; byte++)
        at [byte] = (uint8_t) (value >> (8 * byte));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static char *path = NULL;
    if (!path) {
        zsys_set_logstream (fopen ("/dev/null", "w"));     //  Quiet: it would log every input
        path = zsys_sprintf ("/tmp/herd-fuzz-places-%d", getpid ());
    }
    if (size == 0)
        return 0;
    uint8_t mode = data [0];
    data++;
    size--;
    FILE *file = fopen (path, "w");
    assert (file);
    if (mode & 1)
        assert (fwrite (data, 1, size, file) == size);
    else {
        //  Up to (mode / 2) records, the rest strings
        size_t count = (size_t) (mode >> 1) < size / S_RECORD? (size_t) (mode >> 1): size / S_RECORD;
        uint8_t header [S_HEADER] = { 0 };
        memcpy (header, "HERDPLC1", 8);
        s_put32 (header + 8, (uint32_t) count);
        s_put32 (header + 12, (uint32_t) (size - count * S_RECORD));
        uint32_t checksum = herd_fnv32 (data, count * S_RECORD, HERD_FNV32_SEED);
        s_put32 (header + 16, herd_fnv32 (data + count * S_RECORD, size - count * S_RECORD, checksum));
        assert (fwrite (header, 1, S_HEADER, file) == S_HEADER);
        assert (fwrite (data, 1, size, file) == size);
    }
    fclose (file);
    char *error = NULL;
    herd_offline_t *places = herd_offline_load (path, &error);
    assert (places || (error && !strchr (error, '\n')));
    if (places) {
        for (uint32_t index = 0; index < herd_offline_size (places) && index < 4; index++) {
            double latitude, longitude;
            herd_offline_position (places, index, &latitude, &longitude);
            uint32_t indexed [20], scanned [20];
            size_t found = herd_offline_nearest (places, latitude, longitude, 50000, 20, indexed);
            assert (found >= 1);
            assert (found == herd_offline_nearest_scan (places, latitude, longitude, 50000, 20, scanned));
            assert (memcmp (indexed, scanned, found * sizeof (uint32_t)) == 0);
            herd_query_t query = { latitude, longitude, 10000, 5 };
            json_t *answer = herd_offline_search (places, &query);
            assert (answer);
            json_decref (answer);
        }
        herd_offline_destroy (&places);
    }
    freen (error);
    unlink (path);
    return 0;
}
