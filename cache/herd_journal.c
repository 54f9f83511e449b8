//  cache/herd_journal.c: the append-only journal of a server's store.
//
//  Who waits on the disk, and who does not:
//  - the loop write(2)s each pass's records once (group commit), which
//    costs a copy into the page cache; under "always" it also fdatasyncs
//    once per pass, since the replies of that pass wait on it;
//  - the everysec fdatasync, and the fsync of the folder after a rename,
//    run in the syncer, a thread of our own: the loop hands it a dup of
//    the fd and reads its answer when it comes;
//  - a rewrite (compaction, and recovery after a failure) is a forked
//    child, as Redis's BGREWRITEAOF: it writes the store as it was at the
//    fork to <journal>.rewrite while the loop goes on; every record the
//    loop writes meanwhile goes to both files, so the new file is the
//    snapshot plus all that came after it (replay order does not matter:
//    newer-wins). When the child is done the loop renames the new file
//    over the old one.
//
//  A journal that cannot write fails loudly: a failed write is cut back
//  to the last whole record, a failed write or fdatasync puts the journal
//  in the failed state (logged once), and the node refuses IAMATs while
//  it is there. Every second a rewrite from the store is tried; when one
//  succeeds the journal holds the whole store again and leaves the state
//  (logged once).

#include "herd_classes.h"
#include <sys/resource.h>
#include <sys/wait.h>

//  Below this the journal is never compacted: rewriting is not worth it
#define S_COMPACT_FLOOR (1024 * 1024)
//  Queued bytes that make append write at once
#define S_PENDING_MAX   (1024 * 1024)
//  The rewriting child's write buffer
#define S_CHILD_BUFFER  (256 * 1024)

#define S_ALWAYS    0
#define S_EVERYSEC  1
#define S_NO        2

struct _herd_journal_t {
    char *path;                 //  The journal file
    char *rewrite_path;         //  Where a rewrite is written
    int fd;                     //  Open for appending
    int policy;                 //  S_ALWAYS, S_EVERYSEC or S_NO
    char *pending;              //  Records queued, not yet written (owned)
    size_t pending_size;
    size_t pending_capacity;
    size_t size;                //  Bytes of whole records in the file
    bool dirty;                 //  Written since the last sync was asked
    herd_store_t *store;        //  Borrowed, once attached
    zloop_t *loop;              //  Borrowed, once attached
    int timer;                  //  The one-second maintenance timer
    zactor_t *syncer;           //  fdatasync off the loop (owned)
    herd_reader_t *synced_reader;   //  Its answers, in the loop
    bool syncing;               //  A sync is with the syncer
    int64_t sync_asked;         //  zclock_usecs when it was handed over
    uint64_t syncs;             //  fdatasync calls made
    uint64_t sync_usecs_max;    //  The slowest fdatasync seen
    bool failed;                //  Cannot write: the node refuses IAMATs
    char *failure;              //  Why, for STATE (owned)
    uint64_t failures;          //  Times it entered the failed state
    pid_t rewriter;             //  The child writing a rewrite, or 0
    int rewrite_fd;             //  Its file, which we append to as well
    int64_t rewrite_started;    //  zclock_mono
    uint64_t rewrites;          //  Rewrites completed
};

static int
    s_flush_to (herd_journal_t *self, int fd);
static void
    s_rewrite_abort (herd_journal_t *self, const char *why);

//  --------------------------------------------------------------------------
//  The syncer: a thread that fdatasyncs what it is handed. In: "SYNC",
//  an fd it now owns (it closes it); out: rc, errno, microseconds taken.
//  Or in: "CLOSE", an fd: closing the last fd of a replaced journal frees
//  its pages, tens of milliseconds for a big one, so that is done here
//  too (as Redis closes its old AOF in a background job); no answer.

static void
s_syncer (zsock_t *pipe, void *args)
{
    (void) args;
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
        zsock_send (pipe, "iii", rc, error, (int) (zclock_usecs () - started));
        freen (command);
    }
}

//  --------------------------------------------------------------------------
//  Failing loudly

static void
s_fail (herd_journal_t *self, const char *what, int error)
{
    if (self->failed)
        return;
    self->failed = true;
    self->failures++;
    freen (self->failure);
    self->failure = zsys_sprintf ("%s: %s", what, strerror (error));
    zsys_error ("journal %s: %s; refusing IAMATs (answered \"?\") until it can write again, "
                "retrying every second", self->path, self->failure);
}

static void
s_recover (herd_journal_t *self)
{
    if (!self->failed)
        return;
    self->failed = false;
    zsys_info ("journal %s: writing again (after: %s); acknowledging IAMATs again",
               self->path, self->failure);
    freen (self->failure);
}

static const char s_hex [] = "0123456789abcdef";

//  One record into record (size + 10 bytes): "<fnv32 hex> <line>\n".
//  No stdio, no allocation: the rewriting child calls it too.
static void
s_format_record (const char *line, size_t size, char *record)
{
    uint32_t checksum = herd_fnv32 (line, size, HERD_FNV32_SEED);
    for (int digit = 0; digit < 8; digit++)
        record [digit] = s_hex [(checksum >> (28 - 4 * digit)) & 15];
    record [8] = ' ';
    memcpy (record + 9, line, size);
    record [size + 9] = '\n';
}

//  --------------------------------------------------------------------------
//  Open, replay, close

herd_journal_t *
herd_journal_new (const char *path, const char *policy, char **error_p)
{
    assert (path && policy && error_p);
    herd_file_create_folder (path);    //  If it fails, open says why
    bool existed = zsys_file_exists (path);
    int fd = open (path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd == -1) {
        *error_p = zsys_sprintf ("cannot open journal %s: %s", path, strerror (errno));
        return NULL;
    }
    //  A new file's name must survive a power cut too
    if (!existed && herd_file_sync_folder (path) == -1) {
        *error_p = zsys_sprintf ("cannot sync the folder of journal %s: %s", path, strerror (errno));
        close (fd);
        return NULL;
    }
    herd_journal_t *self = (herd_journal_t *) zmalloc (sizeof (herd_journal_t));
    self->path = strdup (path);
    self->rewrite_path = zsys_sprintf ("%s.rewrite", path);
    self->fd = fd;
    self->rewrite_fd = -1;
    self->policy = streq (policy, "always")? S_ALWAYS: streq (policy, "no")? S_NO: S_EVERYSEC;
    //  A rewrite a crash left behind is of no use: the journal is whole
    unlink (self->rewrite_path);
    return self;
}

void
herd_journal_destroy (herd_journal_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_journal_t *self = *self_p;
        if (self->rewriter)
            s_rewrite_abort (self, "server stopping");
        herd_journal_flush (self);
        //  The last records reach the disk before we go, whatever the policy
        if (!self->failed && self->policy != S_NO && fdatasync (self->fd) == 0)
            self->syncs++;
        if (self->loop) {
            zloop_timer_end (self->loop, self->timer);
            herd_reader_destroy (&self->synced_reader);
        }
        zactor_destroy (&self->syncer);
        close (self->fd);
        freen (self->pending);
        freen (self->failure);
        freen (self->rewrite_path);
        freen (self->path);
        freen (self);
        *self_p = NULL;
    }
}

size_t
herd_journal_replay (herd_journal_t *self, herd_store_t *store)
{
    assert (self);
    FILE *file = fdopen (dup (self->fd), "r");
    assert (file);
    fseek (file, 0, SEEK_SET);
    char *line = NULL;
    size_t capacity = 0;
    ssize_t got;
    size_t replayed = 0, bad = 0, record_nbr = 0;
    off_t good_end = 0, offset = 0;
    while ((got = getline (&line, &capacity, file)) != -1) {
        record_nbr++;
        offset += got;
        bool complete = got > 0 && line [got - 1] == '\n';
        char *space = complete? memchr (line, ' ', got): NULL;
        size_t size = space? (size_t) (got - 1 - (space + 1 - line)): 0;
        char *text = space? space + 1: NULL;
        unsigned int checksum = 0;
        bool intact = space && space - line == 8 && sscanf (line, "%8x", &checksum) == 1
                   && checksum == herd_fnv32 (text, size, HERD_FNV32_SEED);
        if (intact && herd_store_offer_text (store, text, size) != HERD_STORE_INVALID) {
            replayed++;
            good_end = offset;
            continue;
        }
        bad++;
        char sample [100];
        if (!complete) {
            zsys_warning ("journal %s: record %zu is torn (%zd bytes, no line end): cut off",
                          self->path, record_nbr, got);
            break;
        }
        zsys_warning ("journal %s: record %zu is corrupt, skipped: %s", self->path, record_nbr,
                      herd_log_sample (line, got - 1, sample, sizeof sample));
        good_end = offset;          //  A bad record mid-file is whole: keep going
    }
    freen (line);
    fclose (file);
    struct stat status;
    fstat (self->fd, &status);
    if (status.st_size > good_end) {
        //  A torn tail would glue itself to the next append: cut it
        if (ftruncate (self->fd, good_end) == 0)
            zsys_warning ("journal %s: cut %lld torn bytes off its end", self->path,
                          (long long) (status.st_size - good_end));
    }
    self->size = (size_t) good_end;
    zsys_info ("journal %s: replayed %zu records (%zu bad), %zu clients", self->path,
               replayed, bad, herd_store_size (store));
    return replayed;
}

//  --------------------------------------------------------------------------
//  Appending: the loop's part

int
herd_journal_append (herd_journal_t *self, const char *line, size_t size)
{
    assert (self);
    //  Failed and not rewriting: the store holds the line, and the rewrite
    //  that ends the failed state writes the whole store
    if (self->failed && !self->rewriter)
        return -1;
    size_t record_size = size + 10;
    if (self->pending_size + record_size > self->pending_capacity) {
        self->pending_capacity = (self->pending_size + record_size) * 2;
        self->pending = (char *) realloc (self->pending, self->pending_capacity);
        assert (self->pending);
    }
    s_format_record (line, size, self->pending + self->pending_size);
    self->pending_size += record_size;
    return self->pending_size > S_PENDING_MAX? herd_journal_flush (self): 0;
}

//  Writes what is pending to fd, and fdatasyncs it under "always". 0 or -1
//  (errno set).
static int
s_flush_to (herd_journal_t *self, int fd)
{
    if (herd_file_write_all (fd, self->pending, self->pending_size))
        return -1;
    if (self->policy == S_ALWAYS) {
        self->syncs++;
        if (fdatasync (fd))
            return -1;
    }
    return 0;
}

int
herd_journal_flush (herd_journal_t *self)
{
    assert (self);
    if (self->pending_size == 0)
        return self->failed? -1: 0;
    //  A rewrite under way gets every record too: it must end up holding
    //  all that came after its fork
    if (self->rewriter && s_flush_to (self, self->rewrite_fd))
        s_rewrite_abort (self, strerror (errno));
    if (!self->failed) {
        if (s_flush_to (self, self->fd)) {
            int error = errno;
            //  Cut a partial write back to the last whole record, so the
            //  next record does not glue itself to a torn one
            if (ftruncate (self->fd, self->size))
                zsys_error ("journal %s: cannot cut a torn write back: %s", self->path, strerror (errno));
            s_fail (self, self->policy == S_ALWAYS? "write or fdatasync failed": "write failed", error);
        }
        else {
            self->size += self->pending_size;
            self->dirty = true;
        }
    }
    self->pending_size = 0;
    return self->failed? -1: 0;
}

//  --------------------------------------------------------------------------
//  Rewrites: a forked child writes the store

typedef struct {
    int fd;
    char *buffer;
    size_t used;
} s_child_t;

static int
s_child_write_line (const char *line, size_t size, void *arg)
{
    s_child_t *child = (s_child_t *) arg;
    if (child->used + size + 10 > S_CHILD_BUFFER) {
        if (herd_file_write_all (child->fd, child->buffer, child->used))
            return -1;
        child->used = 0;
    }
    if (size + 10 > S_CHILD_BUFFER)
        return -1;              //  Never: lines are far shorter
    s_format_record (line, size, child->buffer + child->used);
    child->used += size + 10;
    return 0;
}

//  The child: write the store, sync it, exit. It only reads memory and
//  makes system calls (no stdio, no malloc, no ZeroMQ), so it is safe in
//  the child of a threaded process.
static void
s_rewrite_child (herd_journal_t *self, char *buffer)
{
    //  Let go of every other descriptor, so the parent's closed client
    //  connections do not linger open in us
    int fd = self->rewrite_fd;
    if (fd > 3)
        close_range (3, fd - 1, 0);
    close_range (fd + 1, ~0U, 0);
    s_child_t child = { fd, buffer, 0 };
    int rc = herd_store_walk (self->store, s_child_write_line, &child);
    if (rc == 0)
        rc = herd_file_write_all (fd, buffer, child.used);
    if (rc == 0)
        rc = fdatasync (fd);
    _exit (rc? 1: 0);
}

static void
s_rewrite_start (herd_journal_t *self, const char *why)
{
    int fd = open (self->rewrite_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    if (fd == -1) {
        if (!self->failed)
            zsys_error ("journal %s: cannot start a rewrite: %s", self->rewrite_path, strerror (errno));
        return;
    }
    //  Records still pending are in the store already, so in the child's
    //  snapshot: they go to the old file only
    herd_journal_flush (self);
    char *buffer = (char *) malloc (S_CHILD_BUFFER);
    assert (buffer);
    self->rewrite_fd = fd;
    pid_t pid = fork ();
    if (pid == 0)
        s_rewrite_child (self, buffer);
    freen (buffer);
    if (pid == -1) {
        zsys_error ("journal %s: cannot fork a rewrite: %s", self->path, strerror (errno));
        close (fd);
        self->rewrite_fd = -1;
        unlink (self->rewrite_path);
        return;
    }
    self->rewriter = pid;
    self->rewrite_started = zclock_mono ();
    if (!self->failed)
        zsys_info ("journal %s: rewriting it from the store (%s), in process %d",
                   self->path, why, (int) pid);
}

static void
s_rewrite_abort (herd_journal_t *self, const char *why)
{
    if (!self->rewriter)
        return;
    kill (self->rewriter, SIGKILL);
    waitpid (self->rewriter, NULL, 0);
    self->rewriter = 0;
    close (self->rewrite_fd);
    self->rewrite_fd = -1;
    unlink (self->rewrite_path);
    if (!self->failed)
        zsys_error ("journal %s: rewrite given up: %s", self->path, why);
}

//  Hands fd (a dup) to the syncer; the answer comes to s_handle_synced
static void
s_sync_in_background (herd_journal_t *self, int fd)
{
    if (fd == -1)
        return;
    self->syncing = true;
    self->sync_asked = zclock_usecs ();
    zsock_send (zactor_sock (self->syncer), "si", "SYNC", fd);
    herd_reader_check (self->synced_reader);
}

//  The child is done: the new file replaces the old
static void
s_rewrite_finish (herd_journal_t *self)
{
    size_t before = self->size;
    //  What the loop still holds goes into the new file before the switch
    herd_journal_flush (self);
    if (!self->rewriter)
        return;                 //  That write failed: given up
    struct stat status;
    if (fstat (self->rewrite_fd, &status) || rename (self->rewrite_path, self->path)) {
        s_rewrite_abort (self, strerror (errno));
        return;
    }
    zsock_send (zactor_sock (self->syncer), "si", "CLOSE", self->fd);
    herd_reader_check (self->synced_reader);
    self->fd = self->rewrite_fd;
    self->rewrite_fd = -1;
    self->rewriter = 0;
    self->size = (size_t) status.st_size;
    self->rewrites++;
    //  Records the loop added after the child synced are not on disk yet
    self->dirty = true;
    zsys_info ("journal %s: rewritten from the store in %" PRId64 " ms: %zu -> %zu bytes",
               self->path, zclock_mono () - self->rewrite_started, before, self->size);
    //  The rename must survive a power cut: sync the folder, off the loop
    s_sync_in_background (self, herd_file_open_folder (self->path));
    s_recover (self);
}

//  True if path names the file our fd writes
static bool
s_is_ours (herd_journal_t *self)
{
    struct stat at_path, ours;
    return stat (self->path, &at_path) == 0 && fstat (self->fd, &ours) == 0
        && at_path.st_dev == ours.st_dev && at_path.st_ino == ours.st_ino;
}

//  Once a second: reap a rewrite, sync under everysec, start a rewrite
//  when the journal is twice what the store holds or has failed
static int
s_maintain (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    herd_journal_t *self = (herd_journal_t *) arg;
    herd_journal_flush (self);
    bool running = self->rewriter != 0;
    if (self->rewriter) {
        int status;
        pid_t pid = waitpid (self->rewriter, &status, WNOHANG);
        //  ECHILD: someone else reaped it (SIGCHLD ignored by an embedder);
        //  its result is unknown, so its file is not trusted
        bool vanished = pid == -1 && errno == ECHILD;
        if (pid == self->rewriter || vanished) {
            if (!vanished && WIFEXITED (status) && WEXITSTATUS (status) == 0)
                s_rewrite_finish (self);
            else {
                self->rewriter = 0;     //  Reaped: nothing to kill
                close (self->rewrite_fd);
                self->rewrite_fd = -1;
                unlink (self->rewrite_path);
                if (!self->failed)
                    zsys_error ("journal %s: the rewrite %s; the journal goes on as it was", self->path,
                                vanished? "was reaped by someone else": "failed (disk full?)");
            }
        }
    }
    //  The file we write must be the one at our path: one replaced or
    //  removed under us would take acknowledged updates with it when we
    //  stop. That is a failure like a full disk: refuse, and rewrite.
    if (!self->rewriter && !self->failed && !s_is_ours (self))
        s_fail (self, "the file at its path is not the one being written (replaced or removed)", ESTALE);
    if (self->policy == S_EVERYSEC && self->dirty && !self->syncing && !self->failed) {
        self->dirty = false;
        s_sync_in_background (self, dup (self->fd));
    }
    //  A rewrite that just ended is retried at the next tick, not now
    if (!running) {
        size_t live = herd_store_bytes (self->store) + 10 * herd_store_size (self->store);
        if (self->failed)
            s_rewrite_start (self, "after a failure");
        else
        if (self->size > S_COMPACT_FLOOR && self->size > 2 * live)
            s_rewrite_start (self, "compaction");
    }
    return 0;
}

static int
s_handle_synced (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_journal_t *self = (herd_journal_t *) arg;
    int rc = 0, error = 0, usecs = 0;
    if (zsock_recv (reader, "iii", &rc, &error, &usecs) == -1)
        return 0;
    self->syncing = false;
    self->syncs++;
    if ((uint64_t) usecs > self->sync_usecs_max)
        self->sync_usecs_max = usecs;
    //  A failed fdatasync may have dropped written pages: only a rewrite
    //  from the store can be trusted again
    if (rc)
        s_fail (self, "fdatasync failed", error);
    return 0;
}

void
herd_journal_attach (herd_journal_t *self, zloop_t *loop, herd_store_t *store)
{
    assert (self && loop && store && !self->loop);
    self->loop = loop;
    self->store = store;
    self->syncer = zactor_new (s_syncer, NULL);
    self->synced_reader = herd_reader_new (loop, self->syncer, s_handle_synced, self);
    self->timer = zloop_timer (loop, 1000, 0, s_maintain, self);
}

bool
herd_journal_writable (herd_journal_t *self)
{
    assert (self);
    return !self->failed;
}

size_t
herd_journal_size (herd_journal_t *self)
{
    assert (self);
    return self->size;
}

uint64_t
herd_journal_syncs (herd_journal_t *self)
{
    assert (self);
    return self->syncs;
}

json_t *
herd_journal_stats (herd_journal_t *self)
{
    assert (self);
    return json_pack ("{s:s, s:s?, s:I, s:I, s:I, s:I, s:b}",
        "state", self->failed? "failed": "ok",
        "failure", self->failure,
        "bytes", (json_int_t) self->size,
        "syncs", (json_int_t) self->syncs,
        "sync_usecs_max", (json_int_t) self->sync_usecs_max,
        "failures", (json_int_t) self->failures,
        "rewriting", self->rewriter != 0);
}

//  --------------------------------------------------------------------------
//  Selftest

//  Runs s_maintain until the rewrite under way is done (or 10 s pass)
static void
s_test_finish_rewrite (herd_journal_t *self, zloop_t *loop)
{
    for (int round = 0; round < 1000 && self->rewriter; round++) {
        zclock_sleep (10);
        s_maintain (loop, 0, self);
    }
    assert (!self->rewriter);
}

static herd_store_t *
s_test_replay (const char *path, uint64_t *digest_p)
{
    char *error = NULL;
    herd_store_t *store = herd_store_new (1000);
    herd_journal_t *journal = herd_journal_new (path, "no", &error);
    assert (journal);
    herd_journal_replay (journal, store);
    herd_journal_destroy (&journal);
    if (digest_p)
        *digest_p = herd_store_digest (store);
    return store;
}

void
herd_journal_test (bool verbose)
{
    printf (" * herd_journal: ");
    if (verbose)
        printf ("\n");
    char *path = zsys_sprintf ("/tmp/herd-journal-test-%d/Test.journal", getpid ());
    char *error = NULL;
    herd_journal_t *journal = herd_journal_new (path, "always", &error);
    assert (journal);
    const char *lines [] = { "AT A +0.1 kiwi +1+1 1", "AT A +0.1 pear +1+1 1",
                             "AT B +0.1 kiwi +2+2 2", "AT B +0.1 fig +3+3 3" };
    for (int index = 0; index < 4; index++)
        assert (herd_journal_append (journal, lines [index], strlen (lines [index])) == 0);
    assert (herd_journal_flush (journal) == 0);
    assert (herd_journal_syncs (journal) == 1);         //  One batch, one fdatasync
    herd_journal_destroy (&journal);

    //  Replay: newer-wins gives the same store whatever the order
    herd_store_t *store = herd_store_new (100);
    journal = herd_journal_new (path, "everysec", &error);
    assert (herd_journal_replay (journal, store) == 4);
    assert (herd_store_size (store) == 3);
    assert (streq (herd_store_lookup (store, "kiwi", NULL), lines [2]));
    herd_journal_destroy (&journal);
    herd_store_destroy (&store);

    //  A corrupt record mid-file is skipped; a torn tail is cut off
    FILE *file = fopen (path, "r+");
    fseek (file, 12, SEEK_SET);
    fputc ('X', file);                       //  Inside record 1's line
    fclose (file);
    file = fopen (path, "a");
    fputs ("0badf00d AT B +0.1 torn +1+", file);
    fclose (file);
    store = herd_store_new (100);
    journal = herd_journal_new (path, "no", &error);
    assert (herd_journal_replay (journal, store) == 3);
    assert (!herd_store_lookup (store, "torn", NULL));
    assert (herd_store_size (store) == 3);
    //  Appends after the cut start on a clean line
    assert (herd_journal_append (journal, "AT C +0.1 date +4+4 4", 21) == 0);
    herd_journal_destroy (&journal);
    herd_store_destroy (&store);
    store = herd_store_new (100);
    journal = herd_journal_new (path, "everysec", &error);
    assert (herd_journal_replay (journal, store) == 4);
    assert (herd_store_lookup (store, "date", NULL));
    zloop_t *loop = zloop_new ();
    herd_journal_attach (journal, loop, store);

    //  Compaction: a forked rewrite keeps exactly the store, and what is
    //  written while it runs
    for (int round = 0; round < 60000; round++) {
        char line [64];
        int size = snprintf (line, sizeof line, "AT C +0.1 kiwi +4+4 %d", 100 + round);
        herd_store_offer_text (store, line, size);
        herd_journal_append (journal, line, size);
    }
    assert (herd_journal_flush (journal) == 0);
    size_t before = herd_journal_size (journal);
    s_maintain (loop, 0, journal);
    assert (journal->rewriter);
    assert (herd_store_offer_text (store, "AT C +0.1 late +5+5 5", 21) == HERD_STORE_STORED);
    herd_journal_append (journal, "AT C +0.1 late +5+5 5", 21);
    assert (herd_journal_flush (journal) == 0);
    s_test_finish_rewrite (journal, loop);
    assert (journal->rewrites == 1);
    assert (herd_journal_size (journal) < before / 10);
    assert (!zsys_file_exists (journal->rewrite_path));
    //  A rewriter that someone else reaped (SIGCHLD ignored by whoever
    //  embeds us) is given up, not waited for forever
    s_rewrite_start (journal, "test");
    assert (journal->rewriter);
    assert (waitpid (journal->rewriter, NULL, 0) == journal->rewriter);
    s_maintain (loop, 0, journal);
    assert (!journal->rewriter && !zsys_file_exists (journal->rewrite_path));
    assert (journal->rewrites == 1);
    herd_journal_destroy (&journal);
    uint64_t digest = herd_store_digest (store), replayed = 0;
    herd_store_t *check = s_test_replay (path, &replayed);
    assert (replayed == digest);
    assert (herd_store_lookup (check, "late", NULL));
    herd_store_destroy (&check);

    //  A write that fails (the file size limit here, a full disk in
    //  production) is cut back to the last whole record and fails the
    //  journal; a rewrite brings it back once writes work again
    journal = herd_journal_new (path, "always", &error);
    herd_journal_replay (journal, store);
    herd_journal_attach (journal, loop, store);
    size_t whole = herd_journal_size (journal);
    signal (SIGXFSZ, SIG_IGN);
    struct rlimit limit = { whole + 50, RLIM_INFINITY };
    assert (setrlimit (RLIMIT_FSIZE, &limit) == 0);
    for (int index = 0; index < 5; index++) {
        char line [64];
        int size = snprintf (line, sizeof line, "AT C +0.1 lost%d +6+6 6", index);
        herd_store_offer_text (store, line, size);
        assert (herd_journal_append (journal, line, size) == 0);
    }
    assert (herd_journal_flush (journal) == -1);
    assert (!herd_journal_writable (journal));
    struct stat status;
    assert (stat (path, &status) == 0 && (size_t) status.st_size == whole);
    //  Failed: nothing is queued, the rewrite will take the store
    assert (herd_journal_append (journal, "AT C +0.1 more +7+7 7", 21) == -1);
    herd_store_offer_text (store, "AT C +0.1 more +7+7 7", 21);
    s_maintain (loop, 0, journal);                  //  Still too small: the rewrite fails
    s_test_finish_rewrite (journal, loop);
    assert (!herd_journal_writable (journal));
    limit.rlim_cur = RLIM_INFINITY;
    assert (setrlimit (RLIMIT_FSIZE, &limit) == 0);
    s_maintain (loop, 0, journal);
    s_test_finish_rewrite (journal, loop);
    assert (herd_journal_writable (journal));
    json_t *stats = herd_journal_stats (journal);
    assert (json_integer_value (json_object_get (stats, "failures")) == 1);
    assert (streq (json_string_value (json_object_get (stats, "state")), "ok"));
    json_decref (stats);
    herd_journal_destroy (&journal);
    check = s_test_replay (path, &replayed);
    assert (replayed == herd_store_digest (store));
    assert (herd_store_lookup (check, "lost4", NULL) && herd_store_lookup (check, "more", NULL));
    herd_store_destroy (&check);
    herd_store_destroy (&store);
    zloop_destroy (&loop);
    unlink (path);
    *strrchr (path, '/') = 0;
    rmdir (path);
    freen (path);
    printf ("OK\n");
}
