//  cache/herd_rewrite.c: a journal written anew from the store by a child.

#include "cache/herd_cache_layer.h"
#include <sys/wait.h>
#include <sys/prctl.h>

//  The child's write buffer
#define S_CHILD_BUFFER  (256 * 1024)

struct _herd_rewrite_t {
    char *path;                 //  The new file
    int fd;                     //  Open for appending, or -1 once handed over
    pid_t child;                //  0 once reaped
    int64_t started;
};

//  For tests only: microseconds the child pauses every 1,000 lines, so a
//  test can kill the server inside a rewrite of a large store
#define S_TEST_PAUSE_VARIABLE   "HERD_TEST_REWRITE_PAUSE_USECS"

typedef struct {
    int fd;
    char *buffer;
    size_t used;
    size_t lines;
    long pause;                 //  S_TEST_PAUSE_VARIABLE, or 0
} s_child_t;

static int
s_child_write_line (const char *line, size_t size, void *arg)
{
    s_child_t *child = (s_child_t *) arg;
    if (child->used + size + HERD_RECORD_OVERHEAD > S_CHILD_BUFFER) {
        if (herd_file_write_all (child->fd, child->buffer, child->used))
            return -1;
        child->used = 0;
    }
    if (size + HERD_RECORD_OVERHEAD > S_CHILD_BUFFER)
        return -1;              //  Never: lines are far shorter
    herd_record_format (line, size, child->buffer + child->used);
    child->used += size + HERD_RECORD_OVERHEAD;
    if (child->pause && ++child->lines % 1000 == 0)
        usleep ((useconds_t) child->pause);
    return 0;
}

//  The child: write the store, sync it, exit. It only reads memory and
//  makes system calls (no stdio, no malloc, no ZeroMQ), so it is safe in
//  the child of a threaded process.
static void
s_child (int fd, herd_store_t *store, char *buffer, long pause, pid_t parent)
{
    //  A server killed outright takes its rewrite with it
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
        _exit (1);
    //  Let go of every other descriptor, so the parent's closed client
    //  connections do not linger open in us
    if (fd > 3)
        close_range (3, fd - 1, 0);
    close_range (fd + 1, ~0U, 0);
    s_child_t child = { fd, buffer, 0, 0, pause };
    int rc = herd_store_walk (store, s_child_write_line, &child);
    if (rc == 0)
        rc = herd_file_write_all (fd, buffer, child.used);
    if (rc == 0)
        rc = fdatasync (fd);
    _exit (rc? 1: 0);
}

herd_rewrite_t *
herd_rewrite_start (const char *path, herd_store_t *store, char **error_p)
{
    assert (path && store && error_p);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    if (fd == -1) {
        *error_p = zsys_sprintf ("cannot create %s: %s", path, strerror (errno));
        return NULL;
    }
    //  Allocated before the fork: the child may not
    char *buffer = (char *) malloc (S_CHILD_BUFFER);
    assert (buffer);
    const char *pause = getenv (S_TEST_PAUSE_VARIABLE);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0)
        s_child (fd, store, buffer, pause? atol (pause): 0, parent);
    freen (buffer);
    if (pid == -1) {
        *error_p = zsys_sprintf ("cannot fork: %s", strerror (errno));
        close (fd);
        unlink (path);
        return NULL;
    }
    herd_rewrite_t *self = (herd_rewrite_t *) zmalloc (sizeof (herd_rewrite_t));
    self->path = strdup (path);
    self->fd = fd;
    self->child = pid;
    self->started = zclock_mono ();
    return self;
}

static void
s_destroy (herd_rewrite_t **self_p)
{
    herd_rewrite_t *self = *self_p;
    if (self->fd != -1)
        close (self->fd);
    freen (self->path);
    freen (self);
    *self_p = NULL;
}

void
herd_rewrite_abort (herd_rewrite_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_rewrite_t *self = *self_p;
        if (self->child) {
            kill (self->child, SIGKILL);
            waitpid (self->child, NULL, 0);
        }
        unlink (self->path);
        s_destroy (self_p);
    }
}

int
herd_rewrite_fd (herd_rewrite_t *self)
{
    assert (self);
    return self->fd;
}

int
herd_rewrite_poll (herd_rewrite_t *self, const char **why_p)
{
    assert (self && why_p);
    if (!self->child)
        return 1;
    int status;
    pid_t pid = waitpid (self->child, &status, WNOHANG);
    //  ECHILD: someone else reaped it (SIGCHLD ignored by an embedder); its
    //  result is unknown, so its file is not trusted
    bool vanished = pid == -1 && errno == ECHILD;
    if (pid != self->child && !vanished)
        return 0;
    self->child = 0;
    if (!vanished && WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 1;
    *why_p = vanished? "was reaped by someone else": "failed (disk full?)";
    return -1;
}

int
herd_rewrite_commit (herd_rewrite_t **self_p, const char *target, size_t *size_p)
{
    assert (self_p && *self_p && target && size_p);
    herd_rewrite_t *self = *self_p;
    assert (!self->child);
    struct stat status;
    if (fstat (self->fd, &status) || rename (self->path, target)) {
        int error = errno;
        herd_rewrite_abort (self_p);
        errno = error;
        return -1;
    }
    int fd = self->fd;
    self->fd = -1;
    *size_p = (size_t) status.st_size;
    s_destroy (self_p);
    return fd;
}

pid_t
herd_rewrite_pid (herd_rewrite_t *self)
{
    assert (self);
    return self->child;
}

int64_t
herd_rewrite_started (herd_rewrite_t *self)
{
    assert (self);
    return self->started;
}

//  --------------------------------------------------------------------------
//  Selftest: a store written anew by a child, committed over a target;
//  another aborted, its file gone

void
herd_rewrite_test (bool verbose)
{
    printf (" * herd_rewrite: ");
    if (verbose)
        printf ("\n");
    herd_store_t *store = herd_store_new (100);
    const char *lines [] = { "AT A +0.1 kiwi +1+1 5", "AT A +0.1 pear +2+2 6", "AT B -0.2 fig +3+3 7" };
    for (size_t index = 0; index < 3; index++)
        assert (herd_store_offer_text (store, lines [index], strlen (lines [index])) == HERD_STORE_STORED);
    char folder [] = "/tmp/herd-rewrite-test-XXXXXX";
    assert (mkdtemp (folder));
    char *path = zsys_sprintf ("%s/journal.rewrite", folder);
    char *target = zsys_sprintf ("%s/journal", folder);
    char *error = NULL;
    herd_rewrite_t *rewrite = herd_rewrite_start (path, store, &error);
    assert (rewrite && herd_rewrite_pid (rewrite) > 0 && herd_rewrite_fd (rewrite) >= 0);
    //  What the loop writes meanwhile is appended to the same file
    char record [64];
    const char *later = "AT A +0.1 kiwi +1+1 8";
    herd_record_format (later, strlen (later), record);
    const char *why = NULL;
    int done;
    while ((done = herd_rewrite_poll (rewrite, &why)) == 0)
        zclock_sleep (5);
    assert (done == 1);
    assert (write (herd_rewrite_fd (rewrite), record, strlen (later) + HERD_RECORD_OVERHEAD)
            == (ssize_t) (strlen (later) + HERD_RECORD_OVERHEAD));
    size_t size = 0;
    int fd = herd_rewrite_commit (&rewrite, target, &size);
    assert (fd >= 0 && rewrite == NULL && !zsys_file_exists (path));
    close (fd);
    //  The target holds the three lines, then the later one, each a
    //  record that checks
    zfile_t *file = zfile_new (NULL, target);
    assert (zfile_input (file) == 0);
    zchunk_t *chunk = zfile_read (file, size, 0);
    assert (chunk && zchunk_size (chunk) == size);
    const char *cursor = (const char *) zchunk_data (chunk), *end = cursor + size;
    size_t found = 0;
    bool kiwi_later = false;
    while (cursor < end) {
        const char *newline = memchr (cursor, '\n', (size_t) (end - cursor));
        assert (newline);
        const char *line;
        size_t line_size;
        assert (herd_record_check (cursor, (size_t) (newline + 1 - cursor), &line, &line_size));
        found++;
        kiwi_later |= line_size == strlen (later) && memcmp (line, later, line_size) == 0;
        cursor = newline + 1;
    }
    assert (found == 4 && kiwi_later);
    zchunk_destroy (&chunk);
    zfile_destroy (&file);
    //  Aborted: the child is killed and its file removed
    rewrite = herd_rewrite_start (path, store, &error);
    assert (rewrite);
    herd_rewrite_abort (&rewrite);
    assert (rewrite == NULL && !zsys_file_exists (path));
    unlink (target);
    rmdir (folder);
    freen (path);
    freen (target);
    herd_store_destroy (&store);
    printf ("OK\n");
}
