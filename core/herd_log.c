//  core/herd_log.c: zsys logging to a file and, on request, to stderr as well.
//  zsys writes to one stream; a GNU cookie stream lets that one stream be
//  both the file and stderr without touching every log call.

#include "herd_classes.h"

static FILE *s_stream = NULL;       //  What zsys writes to, if we set it
static FILE *s_file = NULL;         //  The log file, if any
static char *s_filename = NULL;     //  Its name, to reopen it
static bool s_tee = false;          //  Also copy to stderr

static int
s_write_fully (int fd, const char *data, size_t size)
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

static ssize_t
s_tee_write (void *cookie, const char *data, size_t size)
{
    (void) cookie;
    if (s_file && fwrite (data, 1, size, s_file) == size)
        fflush (s_file);
    if (s_tee) {
        fwrite (data, 1, size, stderr);
        fflush (stderr);
    }
    return (ssize_t) size;
}

int
herd_log_open (const char *filename, bool to_stderr)
{
    herd_log_close ();
    if (filename) {
        herd_file_create_folder (filename);    //  If it fails, fopen says why
        s_file = fopen (filename, "a");
        if (!s_file)
            return -1;
        s_filename = strdup (filename);
    }
    s_tee = to_stderr;
    cookie_io_functions_t functions = { NULL, s_tee_write, NULL, NULL };
    s_stream = fopencookie (NULL, "w", functions);
    //  Line buffered: each zsys message reaches the file whole
    setvbuf (s_stream, NULL, _IOLBF, 0);
    zsys_set_logstream (s_stream);
    return 0;
}

void
herd_log_close (void)
{
    zsys_set_logstream (stderr);
    if (s_stream)
        fclose (s_stream);
    if (s_file)
        fclose (s_file);
    s_stream = NULL;
    s_file = NULL;
    freen (s_filename);
}

int
herd_log_reopen (void)
{
    if (!s_filename || !s_stream)
        return 0;
    FILE *file = fopen (s_filename, "a");
    if (!file)
        return -1;                  //  Keep writing to the old one
    //  Every thread logs through s_stream, whose lock serialises the
    //  writes: holding it, no write can see the file change under it
    flockfile (s_stream);
    fflush (s_stream);
    FILE *old = s_file;
    s_file = file;
    funlockfile (s_stream);
    fclose (old);
    return 0;
}

void
herd_log_write (const char *data, size_t size)
{
    FILE *stream = herd_log_stream ();
    //  Under the stream's lock, after what it holds: in order with every
    //  other thread's zsys lines, and past stdio's two buffer copies
    flockfile (stream);
    fflush (stream);
    if (s_file) {
        fflush (s_file);
        //  A log that cannot be written (full disk) loses lines, never
        //  stops the server: as zsys's own lines
        s_write_fully (fileno (s_file), data, size);
    }
    if (s_tee || !s_file)
        s_write_fully (STDERR_FILENO, data, size);
    funlockfile (stream);
}

FILE *
herd_log_stream (void)
{
    return s_stream? s_stream: stderr;
}

const char *
herd_log_sample (const char *data, size_t size, char *buffer, size_t buffer_size)
{
    assert (buffer_size >= 16);
    //  Most lines are plain text that fits: one scan, one copy
    size_t plain = 0;
    while (plain < size && (unsigned char) data [plain] >= 0x20 && (unsigned char) data [plain] < 0x7f
       &&  data [plain] != '\\')
        plain++;
    if (plain == size && size + 8 < buffer_size) {
        memcpy (buffer, data, size);
        buffer [size] = 0;
        return buffer;
    }
    size_t used = 0;
    for (size_t index = 0; index < size; index++) {
        unsigned char byte = (unsigned char) data [index];
        if (used + 8 >= buffer_size) {
            strcpy (buffer + used, "...");
            return buffer;
        }
        if (byte >= 0x20 && byte < 0x7f && byte != '\\')
            buffer [used++] = (char) byte;
        else
            used += snprintf (buffer + used, 5, "\\x%02x", byte);
    }
    buffer [used] = 0;
    return buffer;
}

void
herd_log_test (bool verbose)
{
    printf (" * herd_log: ");
    if (verbose)
        printf ("\n");
    char buffer [32];
    assert (streq (herd_log_sample ("AT x", 4, buffer, sizeof buffer), "AT x"));
    assert (streq (herd_log_sample ("a\0\n", 3, buffer, sizeof buffer), "a\\x00\\x0a"));
    char long_line [100];
    memset (long_line, 'x', sizeof long_line);
    herd_log_sample (long_line, sizeof long_line, buffer, sizeof buffer);
    assert (strlen (buffer) < sizeof buffer);
    assert (streq (buffer + strlen (buffer) - 3, "..."));

    char *path = zsys_sprintf ("/tmp/herd-log-test-%d/server.log", getpid ());
    assert (herd_log_open (path, false) == 0);
    zsys_info ("herd_log selftest line");
    herd_log_close ();
    FILE *file = fopen (path, "r");
    assert (file);
    char line [256] = "";
    assert (fgets (line, sizeof line, file));
    assert (strstr (line, "herd_log selftest line"));
    fclose (file);
    //  Rotation (logrotate without copytruncate): the file is renamed
    //  away, reopen makes a new one at the name; nothing is lost between
    unlink (path);
    assert (herd_log_open (path, false) == 0);
    zsys_info ("before rotation");
    char *rotated = zsys_sprintf ("%s.1", path);
    assert (rename (path, rotated) == 0);
    zsys_info ("after the rename, before the reopen");
    assert (herd_log_reopen () == 0);
    zsys_info ("after rotation");
    herd_log_close ();
    zchunk_t *old = zchunk_slurp (rotated, 0);
    zchunk_t *new = zchunk_slurp (path, 0);
    assert (old && new);
    char *old_text = zchunk_strdup (old);
    char *new_text = zchunk_strdup (new);
    assert (strstr (old_text, "before rotation") && strstr (old_text, "before the reopen"));
    assert (!strstr (old_text, "after rotation"));
    assert (strstr (new_text, "after rotation") && !strstr (new_text, "before"));
    freen (old_text);
    freen (new_text);
    zchunk_destroy (&old);
    zchunk_destroy (&new);
    unlink (rotated);
    freen (rotated);
    unlink (path);
    *strrchr (path, '/') = 0;
    rmdir (path);
    freen (path);
    printf ("OK\n");
}
