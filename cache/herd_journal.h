//  cache/herd_journal.h: the store on disk. An append-only file of the AT
//  lines the store accepted, one record a line, "<fnv32 hex> <AT line>\n",
//  replayed at start (newer-wins makes order irrelevant) and compacted by
//  rewriting the store (in a forked child) when the file grows to twice
//  what the store holds. A write or fdatasync that fails puts it in a
//  failed state until a rewrite succeeds (herd_journal.c says how).
//
//  fsync policy, like Redis's appendfsync:
//      always    fdatasync after every record, before the reply goes out:
//                nothing acknowledged is lost, even to a power cut
//      everysec  fdatasync once a second (the default), in a thread of
//                its own: a power cut or OS crash loses at most the last
//                second or two
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

//  Starts its work off the loop: the one-second maintenance (everysec
//  fdatasync through the syncer thread, rewrites for compaction and after
//  a failure, which write store). Store is borrowed.
//  Below bytes the journal is never compacted (herd/journal_rewrite_min,
//  as Redis's auto-aof-rewrite-min-size): above, when it is twice what
//  the store holds
//  A rewrite must start by deadline (zclock_mono): a location was
//  forgotten or expired, and must leave the disk. The earliest deadline
//  asked for holds until a rewrite starts.
void
    herd_journal_rewrite_by (herd_journal_t *self, int64_t deadline);

void
    herd_journal_set_rewrite_min (herd_journal_t *self, size_t bytes);

void
    herd_journal_attach (herd_journal_t *self, zloop_t *loop, herd_store_t *store);

//  Queues an accepted line for the journal. The caller flushes before it
//  acknowledges anything, so one write (and, under "always", one fsync)
//  carries every line a batch of pipelined commands produced: group commit.
//  Flushes by itself past 1 MiB queued. 0, or -1 if the journal has failed
//  (the line is in the store; the rewrite that ends the failure has it).
int
    herd_journal_append (herd_journal_t *self, const char *line, size_t size);

//  Writes what is queued (and fdatasyncs it under "always"). 0, or -1 if
//  the journal has failed: nothing of this batch may be acknowledged.
int
    herd_journal_flush (herd_journal_t *self);

//  False while the journal is failed (a write or fdatasync failed and no
//  rewrite has succeeded since): the node refuses IAMATs
bool
    herd_journal_writable (herd_journal_t *self);

//  fdatasync calls made since start: "always" makes one per batch of
//  commands, "everysec" at most one a second, "no" none
uint64_t
    herd_journal_syncs (herd_journal_t *self);

//  Size of the journal file in bytes
size_t
    herd_journal_size (herd_journal_t *self);

//  Puts its state and counters into stats (core/herd_counters)
void
    herd_journal_stats (herd_journal_t *self, json_t *stats);

void
    herd_journal_test (bool verbose);

#endif
