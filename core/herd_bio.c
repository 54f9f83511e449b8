//  core/herd_bio.c: background jobs off the loop.

#include "core/herd_core_layer.h"

struct _herd_bio_t {
    zactor_t *actor;
};

//  In: "SYNC" or "CLOSE", and an fd it now owns. Out, for a sync: rc,
//  errno and the microseconds it took.
static void
s_worker (zsock_t *pipe, void *args)
{
    (void) args;
    herd_actor_name ("herd-bio");
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        int fd = -1;
        if (zsock_recv (pipe, "si", &command, &fd) == -1 || !command || streq (command, "$TERM")) {
            freen (command);
            break;
        }
        if (streq (command, "CLOSE")) {
            close (fd);
            freen (command);
            continue;
        }
        int64_t started = zclock_usecs ();
        //  A folder takes fsync; a file's data fdatasync
        struct stat status;
        bool folder = fstat (fd, &status) == 0 && S_ISDIR (status.st_mode);
        int rc = folder? fsync (fd): fdatasync (fd);
        int error = rc? errno: 0;
        close (fd);
        zsock_send (pipe, "i8i", rc, (uint64_t) (zclock_usecs () - started), error);
        freen (command);
    }
}

herd_bio_t *
herd_bio_new (void)
{
    herd_bio_t *self = (herd_bio_t *) zmalloc (sizeof (herd_bio_t));
    self->actor = zactor_new (s_worker, NULL);
    assert (self->actor);
    return self;
}

void
herd_bio_destroy (herd_bio_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_bio_t *self = *self_p;
        zactor_destroy (&self->actor);
        freen (self);
        *self_p = NULL;
    }
}

void
herd_bio_sync (herd_bio_t *self, int fd)
{
    assert (self && fd >= 0);
    zsock_send (zactor_sock (self->actor), "si", "SYNC", fd);
}

void
herd_bio_close (herd_bio_t *self, int fd)
{
    assert (self && fd >= 0);
    zsock_send (zactor_sock (self->actor), "si", "CLOSE", fd);
}

zactor_t *
herd_bio_actor (herd_bio_t *self)
{
    assert (self);
    return self->actor;
}

int
herd_bio_synced (herd_bio_t *self, int *error_p, int64_t *usecs_p)
{
    assert (self && error_p && usecs_p);
    int rc = 0, error = 0;
    uint64_t usecs = 0;
    *error_p = 0;
    *usecs_p = 0;
    if (zsock_recv (self->actor, "i8i", &rc, &usecs, &error) == -1)
        return -1;
    *error_p = error;
    *usecs_p = (int64_t) usecs;
    return rc? -1: 0;
}

//  --------------------------------------------------------------------------
//  Selftest: a file and a folder synced, a bad descriptor's error, a close

void
herd_bio_test (bool verbose)
{
    printf (" * herd_bio: ");
    if (verbose)
        printf ("\n");
    char *path = zsys_sprintf ("/tmp/herd-bio-test-%d", getpid ());
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert (fd != -1 && write (fd, "x", 1) == 1);
    herd_bio_t *bio = herd_bio_new ();
    int error;
    int64_t usecs;
    herd_bio_sync (bio, dup (fd));
    assert (herd_bio_synced (bio, &error, &usecs) == 0 && error == 0 && usecs >= 0);
    herd_bio_sync (bio, open ("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    assert (herd_bio_synced (bio, &error, &usecs) == 0);
    //  A pipe takes no fdatasync: its error comes back
    int ends [2];
    assert (pipe (ends) == 0);
    herd_bio_sync (bio, ends [0]);
    assert (herd_bio_synced (bio, &error, &usecs) == -1 && error == EINVAL);
    herd_bio_close (bio, ends [1]);
    herd_bio_close (bio, fd);
    herd_bio_destroy (&bio);
    assert (bio == NULL);
    //  Closed in the thread: the descriptors are free again
    assert (fcntl (fd, F_GETFD) == -1 && errno == EBADF);
    unlink (path);
    freen (path);
    printf ("OK\n");
}
