//  tests/fuzz_journal.c: libFuzzer target for the journal reader. Any
//  bytes on disk must replay (good records in, bad ones skipped or cut off)
//  without a crash, and a record appended afterwards must survive the next
//  replay: nothing a damaged file holds may swallow a new record.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static char *path = NULL;
    if (!path) {
        zsys_set_logstream (fopen ("/dev/null", "w"));     //  Quiet: it would log every input
        path = zsys_sprintf ("/tmp/herd-fuzz-journal-%d", getpid ());
    }
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    fclose (file);

    char *error = NULL;
    herd_store_t *store = herd_store_new (1000);
    herd_journal_t *journal = herd_journal_new (path, "no", &error);
    assert (journal);
    size_t replayed = herd_journal_replay (journal, store);
    assert (herd_store_size (store) <= replayed);
    const char *line = "AT Fuzz +0.000000001 fuzz-sentinel +1+1 99999999999";
    assert (herd_journal_append (journal, line, strlen (line)) == 0);
    herd_journal_destroy (&journal);
    herd_store_destroy (&store);

    store = herd_store_new (1000);
    journal = herd_journal_new (path, "no", &error);
    herd_journal_replay (journal, store);
    const char *held = herd_store_lookup (store, "fuzz-sentinel", NULL);
    assert (held && streq (held, line));
    herd_journal_destroy (&journal);
    herd_store_destroy (&store);
    unlink (path);
    return 0;
}
