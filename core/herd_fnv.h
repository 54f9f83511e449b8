//  core/herd_fnv.h: FNV-1a, the one non-cryptographic hash of the herd.
//  The journal checksums records with the 32-bit form, the places data
//  file its tables, and the store's digest XORs the 64-bit form of every
//  line. Both can be chained: pass a previous result as the seed.

#ifndef HERD_FNV_H_INCLUDED
#define HERD_FNV_H_INCLUDED

#define HERD_FNV32_SEED     0x811C9DC5u
#define HERD_FNV64_SEED     0xcbf29ce484222325ull

uint32_t
    herd_fnv32 (const void *data, size_t size, uint32_t seed);

uint64_t
    herd_fnv64 (const void *data, size_t size, uint64_t seed);

void
    herd_fnv_test (bool verbose);

#endif
