//  cache/herd_record.c: one record of a journal.

#include "cache/herd_cache_layer.h"
#include <xxhash.h>

static const char s_hex [] = "0123456789abcdef";

//  The checksum records are written with: XXH3's low 32 bits, read a
//  word at a time (FNV-1a, a multiply a byte, cost more than the rest of
//  a record)
static uint32_t
s_checksum (const char *line, size_t size)
{
    return (uint32_t) XXH3_64bits (line, size);
}

void
herd_record_format (const char *line, size_t size, char *record)
{
    uint32_t checksum = s_checksum (line, size);
    for (int digit = 0; digit < 8; digit++)
        record [digit] = s_hex [(checksum >> (28 - 4 * digit)) & 15];
    record [8] = HERD_RECORD_MARK;
    memcpy (record + 9, line, size);
    record [size + 9] = '\n';
}

bool
herd_record_check (const char *record, size_t size, const char **line_p, size_t *size_p)
{
    assert (record && line_p && size_p);
    if (size < HERD_RECORD_OVERHEAD || record [size - 1] != '\n'
    || (record [8] != HERD_RECORD_MARK && record [8] != HERD_RECORD_MARK_FNV))
        return false;
    uint32_t checksum = 0;
    for (int digit = 0; digit < 8; digit++) {
        const char *hex = strchr (s_hex, record [digit]);
        if (!hex || !*hex)
            return false;
        checksum = checksum << 4 | (uint32_t) (hex - s_hex);
    }
    *line_p = record + 9;
    *size_p = size - HERD_RECORD_OVERHEAD;
    //  A journal written before XXH3 replays as it was written
    if (record [8] == HERD_RECORD_MARK_FNV)
        return checksum == herd_fnv32 (*line_p, *size_p, HERD_FNV32_SEED);
    return checksum == s_checksum (*line_p, *size_p);
}

//  --------------------------------------------------------------------------
//  Selftest

void
herd_record_test (bool verbose)
{
    printf (" * herd_record: ");
    if (verbose)
        printf ("\n");
    const char *line = "AT A +0.1 kiwi +1+1 1";
    char record [64];
    herd_record_format (line, strlen (line), record);
    size_t size = strlen (line) + HERD_RECORD_OVERHEAD;
    assert (record [8] == HERD_RECORD_MARK && record [size - 1] == '\n' && !memcmp (record + 9, line, strlen (line)));
    const char *found;
    size_t found_size;
    assert (herd_record_check (record, size, &found, &found_size));
    assert (found_size == strlen (line) && !memcmp (found, line, found_size));
    //  A byte changed, a checksum changed, a record torn: refused
    record [12] ^= 1;
    assert (!herd_record_check (record, size, &found, &found_size));
    record [12] ^= 1;
    record [0] = record [0] == 'a'? 'b': 'a';
    assert (!herd_record_check (record, size, &found, &found_size));
    herd_record_format (line, strlen (line), record);
    assert (!herd_record_check (record, size - 1, &found, &found_size));
    record [3] = 'X';
    assert (!herd_record_check (record, size, &found, &found_size));
    assert (!herd_record_check ("0000000\n", 8, &found, &found_size));
    //  A record as journals were written before XXH3 (FNV-1a 32, a
    //  space) still checks; its checksum under the other mark does not
    char old_record [64];
    snprintf (old_record, sizeof old_record, "%08x %s\n", herd_fnv32 (line, strlen (line), HERD_FNV32_SEED), line);
    assert (herd_record_check (old_record, size, &found, &found_size));
    assert (found_size == strlen (line) && !memcmp (found, line, found_size));
    old_record [8] = HERD_RECORD_MARK;
    assert (!herd_record_check (old_record, size, &found, &found_size));
    herd_record_format (line, strlen (line), record);
    assert (record [8] == HERD_RECORD_MARK);
    record [8] = HERD_RECORD_MARK_FNV;
    assert (!herd_record_check (record, size, &found, &found_size));
    printf ("OK\n");
}
