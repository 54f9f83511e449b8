//  frontend/herd_stream.h: the byte stream of one client connection: its
//  socket (and TLS session), its input buffer cut into lines, its output
//  buffer written as the socket takes
//  it, and the bounds on both. No protocol here: the frontend decides
//  what a line means and when to close.
//
//  Input: bytes are read into a buffer that holds at most max_line bytes
//  of a line plus one read; take_line hands out whole lines, without
//  their line ending (\n or \r\n), until none is left. A line longer than
//  max_line is reported as such (its first max_line bytes), so the caller
//  can answer and close. At end of input a last line with no \n counts.
//
//  TLS: after herd_stream_start_tls the same calls run the handshake
//  (non-blocking: each read or flush takes it one step), then read and
//  write through the session. The session may hold decrypted bytes the
//  socket no longer shows (herd_stream_buffered), and may need the
//  socket readable to write or writable to read (herd_stream_tls_wants).
//  An end without TLS's close_notify drops a last line with no \n: an
//  attacker could have cut it.
//
//  Output: append queues bytes; past max_pending the connection is marked
//  dead (a client that does not read is dropped, not waited for); flush
//  writes what the socket takes now and never blocks.

#ifndef HERD_STREAM_H_INCLUDED
#define HERD_STREAM_H_INCLUDED

typedef struct _herd_stream_t herd_stream_t;

//  What take_line found
#define HERD_STREAM_LINE        1   //  A whole line
#define HERD_STREAM_NONE        0   //  No whole line yet
#define HERD_STREAM_TOO_LONG   -1   //  A line over max_line bytes

//  Takes ownership of fd, a connected non-blocking socket
herd_stream_t *
    herd_stream_new (int fd, size_t max_line, size_t max_pending);

//  Closes the socket
void
    herd_stream_destroy (herd_stream_t **self_p);

int
    herd_stream_fd (herd_stream_t *self);

//  Reads what the socket holds, as far as the input buffer has room.
//  Returns bytes read (>0), 0 at end of input (eof is set), or -1 if
//  nothing was there (EAGAIN) or the read failed (then dead is set).
ssize_t
    herd_stream_read (herd_stream_t *self);

//  When the last bytes were read (CLOCK_REALTIME)
const struct timespec *
    herd_stream_receipt (herd_stream_t *self);

//  The next line held, in *line and *size (borrowed until the next read).
//  Returns HERD_STREAM_LINE, _NONE or _TOO_LONG.
int
    herd_stream_take_line (herd_stream_t *self, const char **line, size_t *size);

//  True if the input buffer has room for another read
bool
    herd_stream_can_read (herd_stream_t *self);

//  Input bytes held that are not yet a whole line
size_t
    herd_stream_input_size (herd_stream_t *self);

//  Drops what input is held (after a line too long)
void
    herd_stream_discard_input (herd_stream_t *self);

//  Queues bytes to write. -1 if past max_pending: then dead is set.
int
    herd_stream_append (herd_stream_t *self, const void *data, size_t size);

//  Replaces size queued bytes at offset (from the first byte not yet
//  written) by new_size others. Offsets hold only while nothing is
//  written, so the frontend replaces before it flushes. 0, or -1 if those
//  bytes are not all queued (or the connection is dead).
int
    herd_stream_replace (herd_stream_t *self, size_t offset, size_t size,
                             const void *data, size_t new_size);

//  Writes what the socket takes now. 0, or -1 if the peer is gone (dead).
int
    herd_stream_flush (herd_stream_t *self);

//  Bytes queued, not yet written
size_t
    herd_stream_pending (herd_stream_t *self);

//  The peer closed its writing side
bool
    herd_stream_eof (herd_stream_t *self);

//  Marks the connection for closing now, with a reason for the log
//  (static text); the first reason given is kept
void
    herd_stream_kill (herd_stream_t *self, const char *reason);

bool
    herd_stream_dead (herd_stream_t *self);

//  Why it was killed, or NULL
const char *
    herd_stream_reason (herd_stream_t *self);

//  Speaks TLS from now on, through session (owned by the connection;
//  made with herd_tls_session on its descriptor)
void
    herd_stream_start_tls (herd_stream_t *self, SSL *session);

//  Its TLS session, or NULL on a plain connection
SSL *
    herd_stream_tls (herd_stream_t *self);

//  Its TLS handshake is done
bool
    herd_stream_secured (herd_stream_t *self);

//  Its TLS handshake failed (it is dead, the reason says why)
bool
    herd_stream_tls_failed (herd_stream_t *self);

//  The epoll events TLS needs to go on beyond the usual ones (EPOLLIN
//  while the handshake runs or a write waits on a read, EPOLLOUT while a
//  read waits on a write); 0 on a plain connection
uint32_t
    herd_stream_tls_wants (herd_stream_t *self);

//  True if the TLS session holds decrypted bytes not yet read: epoll
//  will not say so, the caller reads again when there is room
bool
    herd_stream_buffered (herd_stream_t *self);

void
    herd_stream_test (bool verbose);

#endif
