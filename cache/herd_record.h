//  cache/herd_record.h: one record of a journal: the line, prefixed by a
//  32-bit checksum of the line in 8 hex digits and a mark, ended by a
//  newline ("1b2c3d4e:AT Bailey ... 1621464827\n"). The checksum finds a
//  record a crash tore or a disk corrupted. The mark says which checksum:
//  a colon, the low 32 bits of XXH3 64 (what is written); a space, FNV-1a
//  32 (what journals held before): old journals replay as they are, and
//  their next rewrite writes them anew.

#ifndef HERD_RECORD_H_INCLUDED
#define HERD_RECORD_H_INCLUDED

//  Bytes a record adds to its line
#define HERD_RECORD_OVERHEAD 10

//  The mark after the checksum: XXH3, or the FNV-1a of older journals
#define HERD_RECORD_MARK        ':'
#define HERD_RECORD_MARK_FNV    ' '

//  Writes the record of line into record (size + HERD_RECORD_OVERHEAD
//  bytes). No stdio, no allocation: a forked child calls it too.
void
    herd_record_format (const char *line, size_t size, char *record);

//  A record as read, with its newline: true if it is whole and its
//  checksum matches, with *line_p and *size_p set to its line
bool
    herd_record_check (const char *record, size_t size, const char **line_p, size_t *size_p);

void
    herd_record_test (bool verbose);

#endif
