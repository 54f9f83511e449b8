//  cache/herd_journal.h: the store on disk. An append-only file of the AT
//  lines the store accepted, one record a line, "<fnv32 hex> <AT line>\n",
//  replayed at start (newer-wins makes order irrelevant) and compacted by
//  rewriting the store when the file grows to twice what the store holds.
//
//  fsync policy, like Redis's appendfsync:
//      always    fdatasync after every record, before the reply goes out:
//                nothing acknowledged is lost, even to a power cut
//      everysec  fdatasync once a second (the default): a power cut or OS
//                crash loses at most the last second or two
//      no        the OS decides when (typically within 30 s)
//  Records are written with write(2) before any reply that acknowledges
//  them goes out, so a crash or kill -9 of the server alone loses nothing
//  acknowledged under any policy: the kernel has them.

#ifndef HERD_JOURNAL_H_INCLUDED
#define HERD_JOURNAL_H_INCLUDED

typedef struct _herd_journal_t herd_journal_t;

//  Opens (creating it and its folder) the journal at path; policy is
//  "always", "everysec" or "no". NULL and *error_p on failure.
herd_journal_t *
    herd_journal_new (const char *path, const char *policy, char **error_p);

void
    herd_journal_destroy (herd_journal_t **self_p);

//  Replays every good record into store. A torn or corrupt record is
//  reported (zsys_warning), skipped, and cut off if it ends the file, so
//  appends start clean. Returns the number of records replayed.
size_t
    herd_journal_replay (herd_journal_t *self, herd_store_t *store);

//  Queues an accepted line for the journal. The caller flushes before it
//  acknowledges anything, so one write (and, under "always", one fsync)
//  carries every line a batch of pipelined commands produced: group commit.
//  Flushes by itself past 1 MiB queued. 0 or -1.
int
    herd_journal_append (herd_journal_t *self, const char *line, size_t size);

//  Writes what is queued (and fdatasyncs it under "always"). 0 or -1.
int
    herd_journal_flush (herd_journal_t *self);

//  Writes pending records, then syncs them to disk (fdatasync) unless the
//  policy is "no" (the everysec timer calls it)
void
    herd_journal_sync (herd_journal_t *self);

//  fdatasync calls made since start: "always" makes one per batch of
//  commands, "everysec" at most one a second, "no" none
uint64_t
    herd_journal_syncs (herd_journal_t *self);

//  Rewrites the journal from the store if it has grown to more than twice
//  the store (and past a floor). Atomic: a new file, synced, renamed over.
void
    herd_journal_compact_if_needed (herd_journal_t *self, herd_store_t *store);

//  Size of the journal file in bytes
size_t
    herd_journal_size (herd_journal_t *self);

void
    herd_journal_test (bool verbose);

#endif
