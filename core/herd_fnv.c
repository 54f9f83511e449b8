//  core/herd_fnv.c: FNV-1a hashes (www.isthe.com/chongo/tech/comp/fnv).

#include "core/herd_core_layer.h"

uint32_t
herd_fnv32 (const void *data, size_t size, uint32_t seed)
{
    const unsigned char *bytes = (const unsigned char *) data;
    uint32_t hash = seed;
    for (size_t index = 0; index < size; index++)
        hash = (hash ^ bytes [index]) * 0x01000193u;
    return hash;
}

uint64_t
herd_fnv64 (const void *data, size_t size, uint64_t seed)
{
    const unsigned char *bytes = (const unsigned char *) data;
    uint64_t hash = seed;
    for (size_t index = 0; index < size; index++)
        hash = (hash ^ bytes [index]) * 0x100000001b3ull;
    return hash;
}

void
herd_fnv_test (bool verbose)
{
    printf (" * herd_fnv: ");
    if (verbose)
        printf ("\n");
    //  Published test vectors of FNV-1a
    assert (herd_fnv32 ("", 0, HERD_FNV32_SEED) == 0x811c9dc5u);
    assert (herd_fnv32 ("a", 1, HERD_FNV32_SEED) == 0xe40c292cu);
    assert (herd_fnv32 ("foobar", 6, HERD_FNV32_SEED) == 0xbf9cf968u);
    assert (herd_fnv64 ("a", 1, HERD_FNV64_SEED) == 0xaf63dc4c8601ec8cull);
    assert (herd_fnv64 ("foobar", 6, HERD_FNV64_SEED) == 0x85944171f73967e8ull);
    //  Chaining is hashing the concatenation
    assert (herd_fnv32 ("bar", 3, herd_fnv32 ("foo", 3, HERD_FNV32_SEED))
            == herd_fnv32 ("foobar", 6, HERD_FNV32_SEED));
    printf ("OK\n");
}
