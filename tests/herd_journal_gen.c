//  tests/herd_journal_gen.c: writes a server's journal with many clients,
//  through herd_journal itself, so tests and benchmarks can start a server
//  holding a million clients in seconds (make test, make bench).
//
//  herd_journal_gen PATH CLIENTS COPIES
//  Writes COPIES updates of each of CLIENTS clients ("gen<N>"), each copy
//  newer than the last: the journal holds COPIES times what the store
//  will, so a server started on it compacts at its first tick.

#include "../herd_classes.h"

int
main (int argc, char *argv [])
{
    if (argc != 4 || atol (argv [2]) <= 0 || atoi (argv [3]) <= 0) {
        fprintf (stderr, "usage: herd_journal_gen PATH CLIENTS COPIES\n");
        return 2;
    }
    long clients = atol (argv [2]);
    int copies = atoi (argv [3]);
    char *error = NULL;
    herd_journal_t *journal = herd_journal_new (argv [1], "no", &error);
    if (!journal) {
        fprintf (stderr, "herd_journal_gen: %s\n", error);
        freen (error);
        return 1;
    }
    int rc = 0;
    for (int copy = 0; copy < copies && rc == 0; copy++)
        for (long client = 0; client < clients && rc == 0; client++) {
            char line [128];
            int size = snprintf (line, sizeof line, "AT Gen +0.000000001 gen%ld +%ld.%03d-%ld.%03d %d.%09ld",
                                 client, client % 80, copy, client % 170, copy, 1600000000 + copy, client);
            rc = herd_journal_append (journal, line, size);
        }
    if (rc == 0)
        rc = herd_journal_flush (journal);
    herd_journal_destroy (&journal);
    if (rc)
        fprintf (stderr, "herd_journal_gen: cannot write %s\n", argv [1]);
    return rc? 1: 0;
}
