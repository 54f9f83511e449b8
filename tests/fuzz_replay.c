//  tests/fuzz_replay.c: runs a libFuzzer target over its corpus without
//  libFuzzer, so `make test` replays every input found (gcc, and the
//  sanitizers under SANITIZE=1), as libzmq's fuzzer tests do.
//  fuzz_X_replay FOLDER|FILE ...; exits non-zero if any input fails.

#include "../herd_classes.h"
#include <dirent.h>

int
    LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_replay_file (const char *path)
{
    zchunk_t *chunk = zchunk_slurp (path, 0);
    if (!chunk) {
        fprintf (stderr, "fuzz replay: cannot read %s\n", path);
        return -1;
    }
    //  A copy of exactly the input's size, so ASan sees any overread
    size_t size = zchunk_size (chunk);
    uint8_t *data = (uint8_t *) malloc (size? size: 1);
    memcpy (data, zchunk_data (chunk), size);
    LLVMFuzzerTestOneInput (data, size);
    freen (data);
    zchunk_destroy (&chunk);
    return 0;
}

int
main (int argc, char *argv [])
{
    zsys_init ();
    zsys_set_logstream (fopen ("/dev/null", "w"));
    size_t replayed = 0;
    int rc = 0;
    for (int arg = 1; arg < argc; arg++) {
        DIR *folder = opendir (argv [arg]);
        if (!folder) {
            rc |= s_replay_file (argv [arg]);
            replayed++;
            continue;
        }
        struct dirent *entry;
        while ((entry = readdir (folder))) {
            if (entry->d_name [0] == '.')
                continue;
            char *path = zsys_sprintf ("%s/%s", argv [arg], entry->d_name);
            rc |= s_replay_file (path);
            replayed++;
            freen (path);
        }
        closedir (folder);
    }
    printf ("fuzz replay: %zu inputs, %s\n", replayed, rc? "FAILED": "all passed");
    zsys_shutdown ();
    return rc || replayed == 0? 1: 0;
}
