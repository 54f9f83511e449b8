//  core/herd_bio.h: background jobs off the loop, as Redis's bio.c does:
//  an fdatasync (or a folder's fsync), whose answer the loop reads when it
//  comes, and the close of a big file's last descriptor, which frees its
//  pages (tens of milliseconds for a big journal). One thread; jobs run in
//  the order they were given.

#ifndef HERD_BIO_H_INCLUDED
#define HERD_BIO_H_INCLUDED

typedef struct _herd_bio_t herd_bio_t;

herd_bio_t *
    herd_bio_new (void);

//  Waits for the jobs given, then stops the thread
void
    herd_bio_destroy (herd_bio_t **self_p);

//  Syncs fd, which it now owns (and closes): fsync for a folder,
//  fdatasync for a file. Its answer comes on herd_bio_actor.
void
    herd_bio_sync (herd_bio_t *self, int fd);

//  Closes fd, which it now owns. No answer.
void
    herd_bio_close (herd_bio_t *self, int fd);

//  Where the answers of syncs come, to read in a loop
zactor_t *
    herd_bio_actor (herd_bio_t *self);

//  Reads the answer of one sync: 0 if it worked, else -1 and *error_p (an
//  errno); *usecs_p is how long it took. -1 and error 0 if none came.
int
    herd_bio_synced (herd_bio_t *self, int *error_p, int64_t *usecs_p);

void
    herd_bio_test (bool verbose);

#endif
