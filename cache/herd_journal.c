//  cache/herd_journal.c: the append-only journal of a server's store.
//
//  Who waits on the disk, and who does not:
//  - the loop write(2)s each pass's records once (group commit), which
//    costs a copy into the page cache; under "always" it also fdatasyncs
//    once per pass, since the replies of that pass wait on it;
//  - the everysec fdatasync, the fsync of the folder after a rename and
//    the close of a replaced file run as background jobs (core/herd_bio):
//    the loop hands over a dup of the fd and reads the answer when it
//    comes;
//  - a rewrite (compaction, and recovery after a failure) is a forked
//    child (cache/herd_rewrite) writing <journal>.rewrite while the loop
//    goes on and appends there too; when the child is done the loop
//    renames the new file over the old one.
//  Each record is a line with its checksum (cache/herd_record).
//
//  A journal that cannot write fails loudly: a failed write is cut back
//  to the last whole record, a failed write or fdatasync puts the journal
//  in the failed state (logged once), and the node refuses IAMATs while
//  it is there. Every second a rewrite from the store is tried; when one
//  succeeds the journal holds the whole store again and leaves the state
//  (logged once).

#include "cache/herd_cache_layer.h"
#include <sys/resource.h>
#include <sys/wait.h>           //  The selftest reaps a rewrite itself

//  msecs between looks at a rewrite's child while it runs, so its end (and
//  its duration) is seen within this, not at the next second
#define S_REAP_MSECS    50
//  Queued bytes that make append write at once
#define S_PENDING_MAX   (1024 * 1024)

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
    herd_bio_t *bio;            //  fdatasync and close off the loop (owned)
    herd_reader_t *synced_reader;   //  Its answers, in the loop
    bool syncing;               //  A sync is with the background jobs
    int64_t sync_asked;         //  zclock_usecs when it was handed over
    uint64_t syncs;             //  fdatasync calls made
    uint64_t sync_usecs_max;    //  The slowest fdatasync seen
    bool failed;                //  Cannot write: the node refuses IAMATs
    char *failure;              //  Why, for STATE (owned)
    uint64_t failures;          //  Times it entered the failed state
    herd_rewrite_t *rewrite;    //  Under way, or NULL
    int reap_timer;             //  Looks at its child while it runs, or -1
    uint64_t rewrites;          //  Rewrites completed
    size_t rewrite_min;         //  Below this size the journal is never compacted
    int64_t rewrite_due;        //  zclock_mono by which a rewrite must start (forgets), 0: none
};

static int
    s_flush_to (herd_journal_t *self, int fd);
static void
    s_rewrite_abort (herd_journal_t *self, const char *why);
static int
    s_reap (zloop_t *loop, int timer_id, void *arg);

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
    self->policy = streq (policy, "always")? S_ALWAYS: streq (policy, "no")? S_NO: S_EVERYSEC;
    self->reap_timer = -1;
    self->rewrite_min = HERD_JOURNAL_REWRITE_MIN_DEFAULT;
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
        if (self->rewrite)
            s_rewrite_abort (self, "server stopping");
        herd_journal_flush (self);
        //  The last records reach the disk before we go, whatever the policy
        if (!self->failed && self->policy != S_NO && fdatasync (self->fd) == 0)
            self->syncs++;
        if (self->loop) {
            zloop_timer_end (self->loop, self->timer);
            if (self->reap_timer != -1)
                zloop_timer_end (self->loop, self->reap_timer);
            herd_reader_destroy (&self->synced_reader);
        }
        herd_bio_destroy (&self->bio);
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
        const char *text = NULL;
        size_t size = 0;
        bool intact = herd_record_check (line, (size_t) got, &text, &size);
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
    if (self->failed && !self->rewrite)
        return -1;
    size_t record_size = size + HERD_RECORD_OVERHEAD;
    if (self->pending_size + record_size > self->pending_capacity) {
        self->pending_capacity = (self->pending_size + record_size) * 2;
        self->pending = (char *) realloc (self->pending, self->pending_capacity);
        assert (self->pending);
    }
    herd_record_format (line, size, self->pending + self->pending_size);
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
    if (self->rewrite && s_flush_to (self, herd_rewrite_fd (self->rewrite)))
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
//  Rewrites (cache/herd_rewrite)

static void
s_rewrite_start (herd_journal_t *self, const char *why)
{
    //  Records still pending are in the store already, so in the child's
    //  snapshot: they go to the old file only
    herd_journal_flush (self);
    char *error = NULL;
    self->rewrite = herd_rewrite_start (self->rewrite_path, self->store, &error);
    if (!self->rewrite) {
        if (!self->failed)
            zsys_error ("journal %s: cannot start a rewrite: %s", self->path, error);
        freen (error);
        return;
    }
    if (!self->failed)
        zsys_info ("journal %s: rewriting it from the store (%s), in process %d",
                   self->path, why, (int) herd_rewrite_pid (self->rewrite));
    if (self->loop && self->reap_timer == -1)
        self->reap_timer = zloop_timer (self->loop, S_REAP_MSECS, 0, s_reap, self);
}

static void
s_rewrite_abort (herd_journal_t *self, const char *why)
{
    if (!self->rewrite)
        return;
    herd_rewrite_abort (&self->rewrite);
    if (!self->failed)
        zsys_error ("journal %s: rewrite given up: %s", self->path, why);
}

//  Hands fd (a dup) to the background jobs; the answer comes to
//  s_handle_synced
static void
s_sync_in_background (herd_journal_t *self, int fd)
{
    if (fd == -1)
        return;
    self->syncing = true;
    self->sync_asked = zclock_usecs ();
    herd_bio_sync (self->bio, fd);
    herd_reader_check (self->synced_reader);
}

//  The child is done: the new file replaces the old
static void
s_rewrite_finish (herd_journal_t *self)
{
    size_t before = self->size;
    int64_t started = herd_rewrite_started (self->rewrite);
    //  What the loop still holds goes into the new file before the switch
    herd_journal_flush (self);
    if (!self->rewrite)
        return;                 //  That write failed: given up
    size_t size = 0;
    int fd = herd_rewrite_commit (&self->rewrite, self->path, &size);
    if (fd == -1) {
        if (!self->failed)
            zsys_error ("journal %s: rewrite given up: %s", self->path, strerror (errno));
        return;
    }
    //  The old file's last descriptor: closing it frees its pages, off
    //  the loop
    herd_bio_close (self->bio, self->fd);
    herd_reader_check (self->synced_reader);
    self->fd = fd;
    self->size = size;
    self->rewrites++;
    //  Records the loop added after the child synced are not on disk yet
    self->dirty = true;
    zsys_info ("journal %s: rewritten from the store in %" PRId64 " ms: %zu -> %zu bytes",
               self->path, zclock_mono () - started, before, self->size);
    //  The rename must survive a power cut: sync the folder, off the loop
    s_sync_in_background (self, herd_file_open_folder (self->path));
    s_recover (self);
}

//  A rewrite's child is done: its file replaces the journal, or it failed.
//  The timer ends with the rewrite.
static int
s_reap (zloop_t *loop, int timer_id, void *arg)
{
    (void) timer_id;
    herd_journal_t *self = (herd_journal_t *) arg;
    const char *why = NULL;
    int done = self->rewrite? herd_rewrite_poll (self->rewrite, &why): 0;
    if (done == 1)
        s_rewrite_finish (self);
    else
    if (done == -1) {
        herd_rewrite_abort (&self->rewrite);
        if (!self->failed)
            zsys_error ("journal %s: the rewrite %s; the journal goes on as it was", self->path, why);
    }
    if (!self->rewrite && self->reap_timer != -1) {
        zloop_timer_end (loop, self->reap_timer);
        self->reap_timer = -1;
    }
    return 0;
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
    bool running = self->rewrite != NULL;
    s_reap (loop, 0, self);
    //  The file we write must be the one at our path: one replaced or
    //  removed under us would take acknowledged updates with it when we
    //  stop. That is a failure like a full disk: refuse, and rewrite.
    if (!self->rewrite && !self->failed && !s_is_ours (self))
        s_fail (self, "the file at its path is not the one being written (replaced or removed)", ESTALE);
    if (self->policy == S_EVERYSEC && self->dirty && !self->syncing && !self->failed) {
        self->dirty = false;
        s_sync_in_background (self, dup (self->fd));
    }
    //  A rewrite that just ended is retried at the next tick, not now
    if (!running && !self->rewrite && self->rewrite_due && zclock_mono () >= self->rewrite_due) {
        self->rewrite_due = 0;
        s_rewrite_start (self, "forgotten locations leave the disk (herd/forget_rewrite)");
        if (!self->rewrite)
            self->rewrite_due = zclock_mono () + 1000;      //  Again in a second
    }
    else
    if (!running) {
        size_t live = herd_store_bytes (self->store) + 10 * herd_store_size (self->store);
        if (self->failed)
            s_rewrite_start (self, "after a failure");
        else
        if (self->size > self->rewrite_min && self->size > 2 * live)
            s_rewrite_start (self, "compaction");
    }
    return 0;
}

static int
s_handle_synced (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    herd_journal_t *self = (herd_journal_t *) arg;
    (void) reader;
    int error = 0;
    int64_t usecs = 0;
    int rc = herd_bio_synced (self->bio, &error, &usecs);
    if (rc && !error)
        return 0;               //  Nothing came
    self->syncing = false;
    self->syncs++;
    if ((uint64_t) usecs > self->sync_usecs_max)
        self->sync_usecs_max = (uint64_t) usecs;
    //  A failed fdatasync may have dropped written pages: only a rewrite
    //  from the store can be trusted again
    if (rc)
        s_fail (self, "fdatasync failed", error);
    return 0;
}

void
herd_journal_rewrite_by (herd_journal_t *self, int64_t deadline)
{
    assert (self);
    if (!self->rewrite_due || deadline < self->rewrite_due)
        self->rewrite_due = deadline;
}

void
herd_journal_set_rewrite_min (herd_journal_t *self, size_t bytes)
{
    assert (self);
    self->rewrite_min = bytes;
}

void
herd_journal_attach (herd_journal_t *self, zloop_t *loop, herd_store_t *store)
{
    assert (self && loop && store && !self->loop);
    self->loop = loop;
    self->store = store;
    self->bio = herd_bio_new ();
    self->synced_reader = herd_reader_new (loop, herd_bio_actor (self->bio), s_handle_synced, self);
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

void
herd_journal_stats (herd_journal_t *self, json_t *stats)
{
    assert (self && stats);
    herd_counters_put (stats, HERD_COUNTER_JOURNAL_BYTES, self->size);
    herd_counters_put (stats, HERD_COUNTER_JOURNAL_SYNCS, self->syncs);
    herd_counters_put (stats, HERD_COUNTER_JOURNAL_SYNC_MAX, self->sync_usecs_max);
    herd_counters_put (stats, HERD_COUNTER_JOURNAL_FAILURES, self->failures);
    herd_counters_put_json (stats, HERD_COUNTER_JOURNAL_REWRITING, json_boolean (self->rewrite != NULL));
    //  Beside its counters: its state, and why it failed
    json_t *journal = json_object_get (stats, "journal");
    json_object_set_new (journal, "state", json_string (self->failed? "failed": "ok"));
    if (self->failure)
        json_object_set_new (journal, "failure", json_string (self->failure));
}

//  --------------------------------------------------------------------------
//  Selftest

//  Runs s_maintain until the rewrite under way is done (or 10 s pass)
static void
s_test_finish_rewrite (herd_journal_t *self, zloop_t *loop)
{
    for (int round = 0; round < 1000 && self->rewrite; round++) {
        zclock_sleep (10);
        s_maintain (loop, 0, self);
    }
    assert (!self->rewrite);
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
    //  Below herd/journal_rewrite_min (64 MiB) it is left as it is
    s_maintain (loop, 0, journal);
    assert (!journal->rewrite);
    herd_journal_set_rewrite_min (journal, 1024 * 1024);
    s_maintain (loop, 0, journal);
    assert (journal->rewrite);
    assert (journal->reap_timer != -1);         //  Its end is looked for often
    assert (herd_store_offer_text (store, "AT C +0.1 late +5+5 5", 21) == HERD_STORE_STORED);
    herd_journal_append (journal, "AT C +0.1 late +5+5 5", 21);
    assert (herd_journal_flush (journal) == 0);
    s_test_finish_rewrite (journal, loop);
    assert (journal->rewrites == 1);
    assert (journal->reap_timer == -1);
    assert (herd_journal_size (journal) < before / 10);
    assert (!zsys_file_exists (journal->rewrite_path));
    //  A rewriter that someone else reaped (SIGCHLD ignored by whoever
    //  embeds us) is given up, not waited for forever
    s_rewrite_start (journal, "test");
    assert (journal->rewrite);
    pid_t rewriter = herd_rewrite_pid (journal->rewrite);
    assert (waitpid (rewriter, NULL, 0) == rewriter);
    s_maintain (loop, 0, journal);
    assert (!journal->rewrite && !zsys_file_exists (journal->rewrite_path));
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
    json_t *stats = json_object ();
    herd_journal_stats (journal, stats);
    assert (herd_counters_value (stats, HERD_COUNTER_JOURNAL_FAILURES, NULL) == 1);
    assert (streq (json_string_value (json_object_get (json_object_get (stats, "journal"), "state")), "ok"));
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
