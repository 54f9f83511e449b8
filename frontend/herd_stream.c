//  frontend/herd_stream.c: a connection's byte stream: buffers and I/O.

#include "frontend/herd_frontend_layer.h"
#include <sys/socket.h>
#include <sys/epoll.h>

//  Input room beyond the line limit: one read's worth
#define S_READ_SIZE     16384
//  A connection's buffers start this small and grow on demand, so ten
//  thousand idle clients cost little
#define S_START_SIZE    1024

struct _herd_stream_t {
    int fd;                     //  Non-blocking socket (owned)
    size_t max_line;            //  Longest line, without its ending
    size_t max_pending;         //  Output bound
    char *input;                //  Bytes read (owned)
    size_t input_start;         //  First byte not yet taken as a line
    size_t input_size;          //  End of bytes read
    size_t input_capacity;      //  Grows up to input_max
    size_t input_max;           //  max_line + \r\n + one read
    char *output;               //  Reply bytes (owned)
    size_t output_start;        //  First unwritten byte
    size_t output_end;          //  End of queued bytes
    size_t output_capacity;
    struct timespec receipt;    //  When the last bytes arrived
    bool eof;                   //  Peer closed its writing side
    bool truncated;             //  ... without TLS's close_notify: a last
                                //  line with no \n may be cut, so is dropped
    const char *dead;           //  Why it must close now (static), or NULL
    char *dead_owned;           //  A reason made for this connection (owned)
    SSL *tls;                   //  The TLS session, or NULL (owned)
    bool secured;               //  Its handshake is done
    bool tls_failed;            //  Its handshake failed
    bool tls_wants_write;       //  TLS needs the socket writable to go on
    bool tls_wants_read;        //  A write needs the socket readable first
    bool tcp_eof;               //  The session's reads met the socket's end
};

//  Watches the session's socket reads: one that meets the end of the
//  stream before TLS saw close_notify means the stream was cut. OpenSSL
//  takes that as a clean end (SSL_OP_IGNORE_UNEXPECTED_EOF, so what was
//  already read is still answered), so we tell the two apart here.
static long
s_tls_read_watch (BIO *bio, int operation, const char *data, size_t size, int flags, long value,
                  int rc, size_t *processed)
{
    (void) data;
    (void) size;
    (void) flags;
    (void) value;
    (void) processed;
    if (operation == (BIO_CB_READ | BIO_CB_RETURN) && rc <= 0 && !BIO_should_retry (bio)) {
        herd_stream_t *self = (herd_stream_t *) BIO_get_callback_arg (bio);
        self->tcp_eof = true;
    }
    return rc;
}

herd_stream_t *
herd_stream_new (int fd, size_t max_line, size_t max_pending)
{
    assert (fd >= 0);
    herd_stream_t *self = (herd_stream_t *) zmalloc (sizeof (herd_stream_t));
    self->fd = fd;
    self->max_line = max_line;
    self->max_pending = max_pending;
    self->input_max = max_line + 2 + S_READ_SIZE;
    self->input_capacity = S_START_SIZE < self->input_max? S_START_SIZE: self->input_max;
    self->input = (char *) malloc (self->input_capacity);
    assert (self->input);
    return self;
}

void
herd_stream_destroy (herd_stream_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_stream_t *self = *self_p;
        if (self->tls) {
            //  One try at close_notify, never a wait
            if (self->secured && !self->dead)
                SSL_shutdown (self->tls);
            SSL_free (self->tls);
            ERR_clear_error ();
        }
        freen (self->dead_owned);
        close (self->fd);
        freen (self->input);
        freen (self->output);
        freen (self);
        *self_p = NULL;
    }
}

int
herd_stream_fd (herd_stream_t *self)
{
    assert (self);
    return self->fd;
}

bool
herd_stream_can_read (herd_stream_t *self)
{
    assert (self);
    return self->input_size - self->input_start < self->input_max;
}

//  Slides what is left to the front and grows the buffer if full: bytes
//  of room, 0 if none (the caller takes lines first)
static size_t
s_input_room (herd_stream_t *self)
{
    //  Lines taken are gone: slide what is left to the front
    if (self->input_start) {
        memmove (self->input, self->input + self->input_start, self->input_size - self->input_start);
        self->input_size -= self->input_start;
        self->input_start = 0;
    }
    if (self->input_size == self->input_capacity) {
        if (self->input_capacity == self->input_max)
            return 0;
        size_t capacity = self->input_capacity * 2;
        self->input_capacity = capacity < self->input_max? capacity: self->input_max;
        self->input = (char *) realloc (self->input, self->input_capacity);
        assert (self->input);
    }
    return self->input_capacity - self->input_size;
}

//  Why OpenSSL gave up, as one line kept by the connection
static void
s_tls_kill (herd_stream_t *self, const char *doing, int error)
{
    if (self->dead)
        return;
    long verified = SSL_get_verify_result (self->tls);
    unsigned long code = ERR_peek_error ();
    const char *reason = verified != X509_V_OK? X509_verify_cert_error_string (verified)
                       : code? ERR_reason_error_string (code)
                       : error == SSL_ERROR_SYSCALL && errno? strerror (errno)
                       : "the client closed the connection";
    self->dead_owned = zsys_sprintf ("%s%s: %s", doing, verified != X509_V_OK? ": client certificate": "",
                                     reason? reason: "unknown error");
    self->dead = self->dead_owned;
    ERR_clear_error ();
}

//  One step of the handshake: true once it is done
static bool
s_tls_handshake (herd_stream_t *self)
{
    if (self->secured || self->dead)
        return self->secured;
    ERR_clear_error ();
    int rc = SSL_do_handshake (self->tls);
    self->tls_wants_write = false;
    if (rc == 1) {
        self->secured = true;
        return true;
    }
    int error = SSL_get_error (self->tls, rc);
    if (error == SSL_ERROR_WANT_WRITE)
        self->tls_wants_write = true;
    else
    if (error != SSL_ERROR_WANT_READ) {
        self->tls_failed = true;
        s_tls_kill (self, "TLS handshake failed", error);
    }
    return false;
}

//  Reads decrypted bytes until the session has none or the buffer is full
static ssize_t
s_tls_read (herd_stream_t *self)
{
    if (!s_tls_handshake (self))
        return -1;
    self->tls_wants_write = false;
    ssize_t total = 0;
    size_t room;
    while ((room = s_input_room (self)) > 0) {
        ERR_clear_error ();
        int got = SSL_read (self->tls, self->input + self->input_size, room > INT_MAX? INT_MAX: (int) room);
        if (got > 0) {
            self->input_size += got;
            total += got;
            continue;
        }
        int error = SSL_get_error (self->tls, got);
        if (error == SSL_ERROR_WANT_WRITE)
            self->tls_wants_write = true;
        else
        if (error == SSL_ERROR_ZERO_RETURN) {
            //  close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) the socket's
            //  end without it: our BIO callback saw which
            self->eof = true;
            self->truncated = self->tcp_eof;
        }
        else
        if (error != SSL_ERROR_WANT_READ)
            s_tls_kill (self, "TLS read failed", error);
        break;
    }
    if (total > 0) {
        clock_gettime (CLOCK_REALTIME, &self->receipt);
        return total;
    }
    return self->eof? 0: -1;
}

ssize_t
herd_stream_read (herd_stream_t *self)
{
    assert (self);
    if (self->tls)
        return s_tls_read (self);
    size_t room = s_input_room (self);
    if (room == 0)
        return -1;                      //  Full: the caller takes lines first
    ssize_t got = read (self->fd, self->input + self->input_size, room);
    if (got > 0) {
        clock_gettime (CLOCK_REALTIME, &self->receipt);
        self->input_size += got;
    }
    else
    if (got == 0)
        self->eof = true;
    else
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        herd_stream_kill (self, errno == ECONNRESET? "reset by peer": "read error");
    return got;
}

const struct timespec *
herd_stream_receipt (herd_stream_t *self)
{
    assert (self);
    return &self->receipt;
}

int
herd_stream_take_line (herd_stream_t *self, const char **line, size_t *size)
{
    assert (self && line && size);
    char *begin = self->input + self->input_start;
    size_t held = self->input_size - self->input_start;
    char *newline = (char *) memchr (begin, '\n', held);
    *line = begin;
    *size = self->max_line;
    if (newline) {
        size_t length = (size_t) (newline - begin);
        size_t content = length && newline [-1] == '\r'? length - 1: length;
        if (content > self->max_line)
            return HERD_STREAM_TOO_LONG;
        self->input_start += length + 1;
        *size = content;
        return HERD_STREAM_LINE;
    }
    //  No line end yet. Over-long already if more than max_line bytes are
    //  held, but for a \r that may be the start of the \r\n ending
    bool too_long = self->eof? held > self->max_line
                             : held > self->max_line + 1
                               || (held == self->max_line + 1 && begin [self->max_line] != '\r');
    if (too_long)
        return HERD_STREAM_TOO_LONG;
    if (self->eof && held > 0 && self->truncated) {
        //  TLS ended without close_notify: the line may have been cut
        self->input_start = self->input_size;
        return HERD_STREAM_NONE;
    }
    if (self->eof && held > 0) {
        //  A last line with no \n, then half-close: still a line
        self->input_start = self->input_size;
        *size = held;
        return HERD_STREAM_LINE;
    }
    return HERD_STREAM_NONE;
}

size_t
herd_stream_input_size (herd_stream_t *self)
{
    assert (self);
    return self->input_size - self->input_start;
}

void
herd_stream_discard_input (herd_stream_t *self)
{
    assert (self);
    self->input_start = self->input_size = 0;
}

int
herd_stream_append (herd_stream_t *self, const void *data, size_t size)
{
    assert (self);
    if (self->dead)
        return -1;
    size_t pending = self->output_end - self->output_start;
    if (pending + size > self->max_pending) {
        herd_stream_kill (self, "not reading its replies");
        return -1;
    }
    if (self->output_end + size > self->output_capacity) {
        //  Slide pending bytes to the front, then grow if still short
        if (pending)
            memmove (self->output, self->output + self->output_start, pending);
        self->output_start = 0;
        self->output_end = pending;
        size_t capacity = self->output_capacity? self->output_capacity: S_START_SIZE;
        while (capacity < pending + size)
            capacity *= 2;
        if (capacity != self->output_capacity) {
            self->output = (char *) realloc (self->output, capacity);
            assert (self->output);
            self->output_capacity = capacity;
        }
    }
    memcpy (self->output + self->output_end, data, size);
    self->output_end += size;
    return 0;
}

int
herd_stream_replace (herd_stream_t *self, size_t offset, size_t size,
                         const void *data, size_t new_size)
{
    assert (self);
    size_t pending = self->output_end - self->output_start;
    if (self->dead || offset + size > pending)
        return -1;
    if (new_size > size) {
        //  Room at the end first (append may move the bytes: take the
        //  offset from output_start only afterwards)
        size_t grow = new_size - size;
        char filler [64] = { 0 };
        while (grow) {
            size_t step = grow < sizeof filler? grow: sizeof filler;
            if (herd_stream_append (self, filler, step))
                return -1;
            grow -= step;
        }
        pending = self->output_end - self->output_start - (new_size - size);
    }
    char *at = self->output + self->output_start + offset;
    memmove (at + new_size, at + size, pending - offset - size);
    memcpy (at, data, new_size);
    self->output_end = self->output_start + pending - size + new_size;
    return 0;
}

//  Writes through the TLS session what it takes now
static void
s_tls_flush (herd_stream_t *self)
{
    self->tls_wants_read = false;
    while (!self->dead && self->output_end > self->output_start) {
        //  A record at a time: a retry after WANT_WRITE asks for no less
        size_t size = self->output_end - self->output_start;
        ERR_clear_error ();
        int sent = SSL_write (self->tls, self->output + self->output_start, size > 16384? 16384: (int) size);
        if (sent > 0) {
            self->output_start += sent;
            continue;
        }
        int error = SSL_get_error (self->tls, sent);
        if (error == SSL_ERROR_WANT_READ)
            self->tls_wants_read = true;
        else
        if (error != SSL_ERROR_WANT_WRITE)
            s_tls_kill (self, "TLS write failed (peer gone)", error);
        break;
    }
}

int
herd_stream_flush (herd_stream_t *self)
{
    assert (self);
    if (self->tls) {
        if (s_tls_handshake (self))
            s_tls_flush (self);
    }
    else
    while (!self->dead && self->output_end > self->output_start) {
        ssize_t sent = send (self->fd, self->output + self->output_start,
                             self->output_end - self->output_start, MSG_NOSIGNAL);
        if (sent > 0)
            self->output_start += sent;
        else
        if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else
        if (!(sent == -1 && errno == EINTR))
            herd_stream_kill (self, "write error (peer gone)");
    }
    if (self->output_start == self->output_end)
        self->output_start = self->output_end = 0;
    return self->dead? -1: 0;
}

size_t
herd_stream_pending (herd_stream_t *self)
{
    assert (self);
    return self->output_end - self->output_start;
}

bool
herd_stream_eof (herd_stream_t *self)
{
    assert (self);
    return self->eof;
}

void
herd_stream_kill (herd_stream_t *self, const char *reason)
{
    assert (self);
    if (!self->dead)
        self->dead = reason? reason: "closed";
}

bool
herd_stream_dead (herd_stream_t *self)
{
    assert (self);
    return self->dead != NULL;
}

const char *
herd_stream_reason (herd_stream_t *self)
{
    assert (self);
    return self->dead;
}

void
herd_stream_start_tls (herd_stream_t *self, SSL *session)
{
    assert (self && session && !self->tls);
    self->tls = session;
    SSL_set_options (session, SSL_OP_IGNORE_UNEXPECTED_EOF);
    BIO *socket = SSL_get_rbio (session);
    assert (socket);
    BIO_set_callback_arg (socket, (char *) self);
    BIO_set_callback_ex (socket, s_tls_read_watch);
}

bool
herd_stream_secured (herd_stream_t *self)
{
    assert (self);
    return self->secured;
}

bool
herd_stream_tls_failed (herd_stream_t *self)
{
    assert (self);
    return self->tls_failed;
}

SSL *
herd_stream_tls (herd_stream_t *self)
{
    assert (self);
    return self->tls;
}

uint32_t
herd_stream_tls_wants (herd_stream_t *self)
{
    assert (self);
    if (!self->tls || self->dead)
        return 0;
    return (self->tls_wants_write? EPOLLOUT: 0) | (self->tls_wants_read || !self->secured? EPOLLIN: 0);
}

bool
herd_stream_buffered (herd_stream_t *self)
{
    assert (self);
    return self->tls && self->secured && !self->dead && SSL_has_pending (self->tls);
}

//  --------------------------------------------------------------------------
//  Selftest: a connection over a socketpair, the test playing the client

static herd_stream_t *
s_pair (int *client, size_t max_line, size_t max_pending)
{
    int fds [2];
    int rc = socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds);
    assert (rc == 0);
    *client = fds [1];
    return herd_stream_new (fds [0], max_line, max_pending);
}

static void
s_write (int fd, const char *text)
{
    ssize_t written = write (fd, text, strlen (text));
    assert (written == (ssize_t) strlen (text));
}

//  The next line as a string, or "" if none; -1 for too long
static int
s_take (herd_stream_t *self, char *buffer, size_t buffer_size)
{
    const char *line;
    size_t size;
    int rc = herd_stream_take_line (self, &line, &size);
    buffer [0] = 0;
    if (rc != HERD_STREAM_NONE) {
        assert (size < buffer_size);
        memcpy (buffer, line, size);
        buffer [size] = 0;
    }
    return rc;
}

void
herd_stream_test (bool verbose)
{
    printf (" * herd_stream: ");
    if (verbose)
        printf ("\n");
    char line [300];
    int client;
    herd_stream_t *connection = s_pair (&client, 100, 64 * 1024);
    assert (herd_stream_read (connection) == -1);           //  Nothing yet
    assert (!herd_stream_dead (connection));

    //  Pipelined lines, \r\n endings, a blank line, a partial line
    s_write (client, "IAMAT a +1+1 1\r\nWHATSAT a 1 1\n\nHALF");
    assert (herd_stream_read (connection) > 0);
    assert (herd_stream_receipt (connection)->tv_sec > 0);
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_LINE && streq (line, "IAMAT a +1+1 1"));
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_LINE && streq (line, "WHATSAT a 1 1"));
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_LINE && streq (line, ""));
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_NONE);
    assert (herd_stream_input_size (connection) == 4);
    s_write (client, "-LINE\n");
    assert (herd_stream_read (connection) > 0);
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_LINE && streq (line, "HALF-LINE"));

    //  Exactly max_line bytes fit, with either ending; a \r at max_line + 1
    //  may still be the start of \r\n
    char exact [200];
    memset (exact, 'x', 100);
    strcpy (exact + 100, "\r");
    s_write (client, exact);
    herd_stream_read (connection);
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_NONE);
    s_write (client, "\n");
    herd_stream_read (connection);
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_LINE && strlen (line) == 100);
    //  One byte more is too long, with or without its \n yet
    memset (exact, 'y', 101);
    exact [101] = 0;
    s_write (client, exact);
    herd_stream_read (connection);
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_TOO_LONG);
    assert (strlen (line) == 100 && line [0] == 'y');
    herd_stream_discard_input (connection);
    assert (herd_stream_input_size (connection) == 0);

    //  Input grows on demand up to max_line + one read, no further
    char *bulk = (char *) malloc (64 * 1024);
    memset (bulk, 'z', 64 * 1024);
    ssize_t sent = write (client, bulk, 64 * 1024);
    assert (sent > 0);
    while (herd_stream_can_read (connection) && herd_stream_read (connection) > 0)
        ;
    assert (!herd_stream_can_read (connection));
    assert (herd_stream_input_size (connection) == 100 + 2 + S_READ_SIZE);
    assert (herd_stream_read (connection) == -1);           //  Full: no read
    assert (!herd_stream_dead (connection));
    freen (bulk);
    herd_stream_destroy (&connection);
    close (client);

    //  Output: queued, flushed, read back whole
    connection = s_pair (&client, 100, 64 * 1024);
    assert (herd_stream_append (connection, "AT one\n", 7) == 0);
    assert (herd_stream_append (connection, "AT two\n", 7) == 0);
    //  Replacing queued bytes, longer and shorter, keeps what follows
    assert (herd_stream_append (connection, "AT three\n", 9) == 0);
    assert (herd_stream_replace (connection, 7, 7, "? IAMAT two\n", 12) == 0);
    assert (herd_stream_replace (connection, 0, 7, "1\n", 2) == 0);
    assert (herd_stream_pending (connection) == 2 + 12 + 9);
    assert (herd_stream_replace (connection, 20, 9, "x", 1) == -1);
    assert (herd_stream_flush (connection) == 0);
    assert (herd_stream_pending (connection) == 0);
    char reply [64] = "";
    assert (read (client, reply, sizeof reply) == 23);
    assert (memcmp (reply, "1\n? IAMAT two\nAT three\n", 23) == 0);
    //  A client that does not read is dead past max_pending
    char *chunk = (char *) calloc (1, 16 * 1024);
    int appended = 0;
    while (herd_stream_append (connection, chunk, 16 * 1024) == 0) {
        herd_stream_flush (connection);
        appended++;
        assert (appended < 1000);
    }
    assert (herd_stream_dead (connection));
    assert (streq (herd_stream_reason (connection), "not reading its replies"));
    herd_stream_kill (connection, "later reason");          //  First one kept
    assert (streq (herd_stream_reason (connection), "not reading its replies"));
    freen (chunk);
    herd_stream_destroy (&connection);
    close (client);

    //  Half-close: a last line without \n still counts, then eof
    connection = s_pair (&client, 100, 64 * 1024);
    s_write (client, "LAST");
    shutdown (client, SHUT_WR);
    while (herd_stream_read (connection) > 0)
        ;
    assert (herd_stream_eof (connection));
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_LINE && streq (line, "LAST"));
    assert (s_take (connection, line, sizeof line) == HERD_STREAM_NONE);
    //  The peer gone: a write fails and kills it
    close (client);
    herd_stream_append (connection, "AT x\n", 5);
    assert (herd_stream_flush (connection) == -1);
    assert (streq (herd_stream_reason (connection), "write error (peer gone)"));
    herd_stream_destroy (&connection);
    assert (connection == NULL);
    printf ("OK\n");
}
