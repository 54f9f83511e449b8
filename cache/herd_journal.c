//  cache/herd_journal.c: the append-only journal of a server's store.

#include "herd_classes.h"

//  Below this the journal is never compacted: rewriting is not worth it
#define S_COMPACT_FLOOR (1024 * 1024)

struct _herd_journal_t {
    char *path;                 //  The journal file
    int fd;                     //  Open for appending
    int policy;                 //  S_ALWAYS, S_EVERYSEC or S_NO
    bool dirty;                 //  Written since the last sync
    char *pending;              //  Records queued, not yet written (owned)
    size_t pending_size;
    size_t pending_capacity;
    size_t size;                //  Bytes in the file
    size_t live;                //  Bytes the store's lines would take
    uint64_t syncs;             //  fdatasync calls made, for STATE
};

//  Queued bytes that make append write at once
#define S_PENDING_MAX (1024 * 1024)

#define S_ALWAYS    0
#define S_EVERYSEC  1
#define S_NO        2

herd_journal_t *
herd_journal_new (const char *path, const char *policy, char **error_p)
{
    assert (path && policy && error_p);
    herd_file_create_folder (path);    //  If it fails, open says why
    int fd = open (path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd == -1) {
        *error_p = zsys_sprintf ("cannot open journal %s: %s", path, strerror (errno));
        return NULL;
    }
    herd_journal_t *self = (herd_journal_t *) zmalloc (sizeof (herd_journal_t));
    self->path = strdup (path);
    self->fd = fd;
    self->policy = streq (policy, "always")? S_ALWAYS: streq (policy, "no")? S_NO: S_EVERYSEC;
    return self;
}

void
herd_journal_destroy (herd_journal_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_journal_t *self = *self_p;
        herd_journal_flush (self);
        herd_journal_sync (self);
        close (self->fd);
        freen (self->pending);
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

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t written = write (fd, data, size);
        if (written == -1 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        data += written;
        size -= written;
    }
    return 0;
}

//  One record into buffer (size + 10 bytes): "<fnv32 hex> <line>\n"
static void
s_format_record (const char *line, size_t size, char *record)
{
    char checksum [10];
    snprintf (checksum, sizeof checksum, "%08x ", herd_fnv32 (line, size, HERD_FNV32_SEED));
    memcpy (record, checksum, 9);
    memcpy (record + 9, line, size);
    record [size + 9] = '\n';
}

int
herd_journal_append (herd_journal_t *self, const char *line, size_t size)
{
    assert (self);
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

int
herd_journal_flush (herd_journal_t *self)
{
    assert (self);
    if (self->pending_size == 0)
        return 0;
    int rc = s_write_all (self->fd, self->pending, self->pending_size);
    if (rc)
        zsys_error ("journal %s: write failed: %s", self->path, strerror (errno));
    else {
        self->size += self->pending_size;
        self->dirty = true;
    }
    self->pending_size = 0;
    if (rc == 0 && self->policy == S_ALWAYS)
        herd_journal_sync (self);
    return rc;
}

void
herd_journal_sync (herd_journal_t *self)
{
    assert (self);
    herd_journal_flush (self);
    if (self->policy == S_NO || !self->dirty)
        return;                 //  "no": the kernel writes when it likes
    self->syncs++;
    if (fdatasync (self->fd) == 0)
        self->dirty = false;
}

uint64_t
herd_journal_syncs (herd_journal_t *self)
{
    assert (self);
    return self->syncs;
}

static int
s_write_line (const char *line, size_t size, void *arg)
{
    FILE *file = (FILE *) arg;
    char *record = (char *) malloc (size + 10);
    assert (record);
    s_format_record (line, size, record);
    size_t written = fwrite (record, 1, size + 10, file);
    freen (record);
    return written == size + 10? 0: -1;
}

static int
s_add_size (const char *line, size_t size, void *arg)
{
    (void) line;
    *(size_t *) arg += size + 10;
    return 0;
}

void
herd_journal_compact_if_needed (herd_journal_t *self, herd_store_t *store)
{
    assert (self);
    herd_journal_flush (self);
    if (self->size < S_COMPACT_FLOOR)
        return;
    size_t live = 0;
    herd_store_walk (store, s_add_size, &live);
    if (self->size <= 2 * live)
        return;
    char *temporary = zsys_sprintf ("%s.compact", self->path);
    FILE *file = fopen (temporary, "w");
    int rc = file? herd_store_walk (store, s_write_line, file): -1;
    if (file) {
        rc |= fflush (file);
        rc |= fdatasync (fileno (file));
        rc |= fclose (file);
    }
    if (rc == 0 && rename (temporary, self->path) == 0) {
        int fd = open (self->path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (fd != -1) {
            zsys_info ("journal %s: compacted from %zu to %zu bytes", self->path, self->size, live);
            close (self->fd);
            self->fd = fd;
            self->size = live;
            self->dirty = false;
        }
    }
    else {
        zsys_error ("journal %s: compaction failed: %s", self->path, strerror (errno));
        unlink (temporary);
    }
    freen (temporary);
}

size_t
herd_journal_size (herd_journal_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  Selftest

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
    journal = herd_journal_new (path, "no", &error);
    assert (herd_journal_replay (journal, store) == 4);
    assert (herd_store_lookup (store, "date", NULL));

    //  Compaction keeps exactly the store
    for (int round = 0; round < 60000; round++) {
        char line [64];
        int size = snprintf (line, sizeof line, "AT C +0.1 kiwi +4+4 %d", 100 + round);
        herd_store_offer_text (store, line, size);
        herd_journal_append (journal, line, size);
    }
    size_t before = herd_journal_size (journal);
    herd_journal_compact_if_needed (journal, store);
    assert (herd_journal_size (journal) < before / 10);
    herd_journal_destroy (&journal);
    uint64_t digest = herd_store_digest (store);
    herd_store_destroy (&store);
    store = herd_store_new (100);
    journal = herd_journal_new (path, "no", &error);
    herd_journal_replay (journal, store);
    assert (herd_store_digest (store) == digest);
    herd_journal_destroy (&journal);
    herd_store_destroy (&store);
    unlink (path);
    *strrchr (path, '/') = 0;
    rmdir (path);
    freen (path);
    printf ("OK\n");
}
