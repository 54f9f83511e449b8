//  cache/herd_rewrite.h: a journal written anew from the store by a forked
//  child, as Redis's BGREWRITEAOF: the child writes the store as it was at
//  the fork to a file of its own, syncs it and exits, while the loop goes
//  on; the journal appends every record it writes meanwhile to that file
//  too, so it ends up holding the snapshot and all that came after (replay
//  order does not matter: newer-wins). Then the new file is renamed over
//  the journal. Used for compaction, and to recover from a failed write.

#ifndef HERD_REWRITE_H_INCLUDED
#define HERD_REWRITE_H_INCLUDED

typedef struct _herd_rewrite_t herd_rewrite_t;

//  Creates path and forks the child that writes store into it. NULL and
//  *error_p if it could not start.
herd_rewrite_t *
    herd_rewrite_start (const char *path, herd_store_t *store, char **error_p);

//  Kills the child if it still runs, and removes the file
void
    herd_rewrite_abort (herd_rewrite_t **self_p);

//  The new file, to append to what the journal writes after the fork
int
    herd_rewrite_fd (herd_rewrite_t *self);

//  Whether the child is done, without waiting: 1 if it wrote and synced
//  the store, 0 if it still runs, -1 if it failed (*why_p says why)
int
    herd_rewrite_poll (herd_rewrite_t *self, const char **why_p);

//  Renames the new file over target, and hands over its descriptor: the
//  fd (caller owns it) and the file's size. -1 (errno set) if it could not:
//  the rewrite is aborted. self is gone either way.
int
    herd_rewrite_commit (herd_rewrite_t **self_p, const char *target, size_t *size_p);

//  The child's pid, and zclock_mono when it was forked
pid_t
    herd_rewrite_pid (herd_rewrite_t *self);
int64_t
    herd_rewrite_started (herd_rewrite_t *self);

void
    herd_rewrite_test (bool verbose);

#endif
