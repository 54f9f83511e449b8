//  core/herd_log.c: zsys logging to a file and, on request, to stderr as well.
//  zsys writes to one stream; a GNU cookie stream lets that one stream be
//  both the file and stderr without touching every log call.

#include "core/herd_core_layer.h"

static FILE *s_stream = NULL;       //  What zsys writes to, if we set it
static FILE *s_file = NULL;         //  The log file, if any
static char *s_filename = NULL;     //  Its name, to reopen it
static bool s_tee = false;          //  Also copy to stderr

static bool s_json = false;         //  One JSON object a line
static int s_level = 1;             //  Lowest level written (index in s_levels)

//  zsys's level letters, lowest first, and their names
static const char s_letters [] = "DINWE";
static const char *s_levels [] = { "debug", "info", "notice", "warning", "error" };

//  Writes bytes to the file and, if teed, to stderr. A log that cannot
//  be written (full disk) loses lines, never stops the server.
static void
s_output (const char *data, size_t size)
{
    if (s_file) {
        fflush (s_file);
        herd_file_write_all (fileno (s_file), data, size);
    }
    if (s_tee || !s_file)
        herd_file_write_all (STDERR_FILENO, data, size);
}

//  The time now, for a text line ("2026-12-05 06:15:23.123 +0000") or as
//  log shippers expect it (RFC 3339: "2026-12-05T06:15:23.123+00:00")
static void
s_time (char *buffer, size_t size, bool rfc3339)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm local;
    localtime_r (&now.tv_sec, &local);
    char date [32], zone [8];
    strftime (date, sizeof date, rfc3339? "%Y-%m-%dT%H:%M:%S": "%Y-%m-%d %H:%M:%S", &local);
    strftime (zone, sizeof zone, "%z", &local);
    long msecs = now.tv_nsec / 1000000;
    if (rfc3339)
        snprintf (buffer, size, "%s.%03ld%.3s:%.2s", date, msecs, zone, zone + 3);
    else
        snprintf (buffer, size, "%s.%03ld %s", date, msecs, zone);
}

const char *
herd_log_time (char *buffer, size_t size)
{
    assert (buffer && size >= HERD_LOG_TIME_SIZE);
    s_time (buffer, size, false);
    return buffer;
}

//  A log line's parts: "L: (ident) TIME message", where L is a level
//  letter and TIME zsys's "yy-mm-dd HH:MM:SS" or ours (herd_log_time, on
//  traffic lines); each part may be missing
typedef struct {
    const char *level;          //  Its name ("info"), or NULL
    const char *server;         //  The ident, or NULL
    size_t server_size;
    const char *time;           //  Or NULL
    size_t time_size;           //  Without the space after it
    const char *message;        //  The rest, up to end
    const char *end;
} s_line_t;

static void
s_parse_line (const char *line, size_t size, s_line_t *parsed)
{
    memset (parsed, 0, sizeof *parsed);
    const char *end = line + size, *rest = line;
    const char *letter = size > 2 && line [1] == ':' && line [0]? strchr (s_letters, line [0]): NULL;
    if (letter) {
        parsed->level = s_levels [letter - s_letters];
        rest = line + 3;
    }
    if (rest < end && *rest == '(') {
        const char *close = (const char *) memchr (rest, ')', end - rest);
        if (close && close + 2 <= end) {
            parsed->server = rest + 1;
            parsed->server_size = (size_t) (close - rest - 1);
            rest = close + 2;
        }
    }
    if (end - rest >= 30 && rest [4] == '-' && rest [10] == ' ' && rest [19] == '.' && rest [29] == ' ')
        parsed->time_size = 29;
    else
    if (end - rest >= 18 && rest [2] == '-' && rest [5] == '-' && rest [8] == ' '
    &&  rest [11] == ':' && rest [14] == ':' && rest [17] == ' ')
        parsed->time_size = 17;
    if (parsed->time_size) {
        parsed->time = rest;
        rest += parsed->time_size + 1;
    }
    parsed->message = rest;
    parsed->end = end;
}

//  One zsys line with its time as people read it elsewhere (Redis, NATS):
//  four-digit year, milliseconds, zone; zsys's own has none of them
static void
s_output_text (const char *line, size_t size)
{
    s_line_t parsed;
    s_parse_line (line, size, &parsed);
    if (!parsed.level || parsed.time_size != 17) {
        s_output (line, size);
        return;
    }
    char now [HERD_LOG_TIME_SIZE];
    herd_log_time (now, sizeof now);
    size_t head = (size_t) (parsed.time - line), now_size = strlen (now);
    char *text = (char *) malloc (size - 17 + now_size);
    assert (text);
    memcpy (text, line, head);
    memcpy (text + head, now, now_size);
    memcpy (text + head + now_size, parsed.time + 17, size - head - 17);
    s_output (text, size - 17 + now_size);
    freen (text);
}

//  One log line as a JSON object, its time from the clock:
//  {"time": "2026-12-03T09:16:38.123+00:00", "level", "server", "message"}
static void
s_output_json (const char *line, size_t size)
{
    s_line_t parsed;
    s_parse_line (line, size, &parsed);
    char server [HERD_SERVER_NAME_MAX + 1] = "";
    if (parsed.server && parsed.server_size < sizeof server) {
        memcpy (server, parsed.server, parsed.server_size);
        server [parsed.server_size] = 0;
    }
    const char *name = parsed.level? parsed.level: "info";
    const char *rest = parsed.message, *end = parsed.end;
    char time [64];
    s_time (time, sizeof time, true);
    char *message = strndup (rest, end - rest);
    json_t *object = json_pack ("{s:s, s:s, s:s, s:s}", "time", time, "level", name,
                                "server", server, "message", message);
    char *text = object? json_dumps (object, JSON_COMPACT | JSON_PRESERVE_ORDER): NULL;
    if (text) {
        char *line_out = zsys_sprintf ("%s\n", text);
        s_output (line_out, strlen (line_out));
        freen (line_out);
    }
    freen (text);
    json_decref (object);
    freen (message);
}

//  Whole lines: filtered by level (unless traffic), as text or JSON
static void
s_output_lines (const char *data, size_t size, bool traffic)
{
    if (!s_json && traffic) {
        s_output (data, size);      //  Its own lines carry the time already
        return;
    }
    while (size) {
        const char *newline = (const char *) memchr (data, '\n', size);
        size_t line_size = newline? (size_t) (newline - data): size;
        const char *letter = line_size > 1 && data [1] == ':' && data [0]? strchr (s_letters, data [0]): NULL;
        if (traffic || !letter || letter - s_letters >= s_level) {
            if (s_json)
                s_output_json (data, line_size);
            else
                s_output_text (data, line_size + (newline? 1: 0));
        }
        data += line_size + (newline? 1: 0);
        size -= line_size + (newline? 1: 0);
    }
}

static ssize_t
s_tee_write (void *cookie, const char *data, size_t size)
{
    (void) cookie;
    s_output_lines (data, size, false);
    return (ssize_t) size;
}

//  Opens filename for appending, created 0640 as the journal is: the log
//  holds clients' locations (the traffic log), not for every local user
static FILE *
s_open_log (const char *filename)
{
    int fd = open (filename, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    FILE *file = fd == -1? NULL: fdopen (fd, "a");
    if (fd != -1 && !file)
        close (fd);
    return file;
}

int
herd_log_open (const char *filename, bool to_stderr)
{
    herd_log_close ();
    if (filename) {
        herd_file_create_folder (filename);    //  If it fails, fopen says why
        s_file = s_open_log (filename);
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
    FILE *file = s_open_log (s_filename);
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
    s_output_lines (data, size, true);
    funlockfile (stream);
}

int
herd_log_set_format (const char *format, const char *level)
{
    if (format && !streq (format, "text") && !streq (format, "json"))
        return -1;
    int found = -1;
    for (int index = 0; level && index < 5; index++)
        if (streq (level, s_levels [index]))
            found = index;
    if (level && found == -1)
        return -1;
    //  Under the stream's lock: every thread's lines are written under it
    FILE *stream = herd_log_stream ();
    flockfile (stream);
    if (format)
        s_json = streq (format, "json");
    if (level)
        s_level = found;
    funlockfile (stream);
    return 0;
}

FILE *
herd_log_stream (void)
{
    return s_stream? s_stream: stderr;
}

//  Printable ASCII but the backslash, which starts an escape
static inline bool
s_byte_is_plain (unsigned char byte)
{
    return byte >= 0x20 && byte < 0x7f && byte != '\\';
}

//  Whether any of eight bytes is not plain: a byte below 0x20, one of
//  0x7f or above, or a backslash (the "has less / has more / has zero"
//  word tricks; each is exact as a yes or no for the word)
static inline bool
s_word_needs_escape (uint64_t word)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t below_space = (word - ones * 0x20) & ~word & highs;
    uint64_t from_delete = ((word + ones * (127 - 0x7e)) | word) & highs;
    uint64_t backslashes = word ^ (ones * '\\');
    uint64_t has_backslash = (backslashes - ones) & ~backslashes & highs;
    return (below_space | from_delete | has_backslash) != 0;
}

const char *
herd_log_sample (const char *data, size_t size, char *buffer, size_t buffer_size)
{
    assert (buffer_size >= 16);
    //  Most lines are plain text that fits: one scan, eight bytes a step
    //  (the traffic log samples two lines per IAMAT), and one copy
    size_t plain = 0;
    for (uint64_t word; plain + 8 <= size; plain += 8) {
        memcpy (&word, data + plain, 8);
        if (s_word_needs_escape (word))
            break;
    }
    while (plain < size && s_byte_is_plain ((unsigned char) data [plain]))
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
        if (s_byte_is_plain (byte))
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
    //  Every byte value at every place in a word: plain ones pass as they
    //  are, the rest are escaped, whichever scan finds them
    for (int value = 0; value < 256; value++)
        for (size_t offset = 0; offset < 20; offset++) {
            char line [20], sample [100], expected [100];
            memset (line, 'a', sizeof line);
            line [offset] = (char) value;
            herd_log_sample (line, sizeof line, sample, sizeof sample);
            if (s_byte_is_plain ((unsigned char) value))
                snprintf (expected, sizeof expected, "%.20s", line);
            else
                snprintf (expected, sizeof expected, "%.*s\\x%02x%.*s", (int) offset, line, value,
                          (int) (sizeof line - offset - 1), line + offset + 1);
            assert (streq (sample, expected));
        }
    char long_line [100];
    memset (long_line, 'x', sizeof long_line);
    herd_log_sample (long_line, sizeof long_line, buffer, sizeof buffer);
    assert (strlen (buffer) < sizeof buffer);
    assert (streq (buffer + strlen (buffer) - 3, "..."));

    char *path = zsys_sprintf ("/tmp/herd-log-test-%d/server.log", getpid ());
    assert (herd_log_open (path, false) == 0);
    struct stat status;
    assert (stat (path, &status) == 0 && (status.st_mode & 0777) == 0640);
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
