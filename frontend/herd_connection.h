//  frontend/herd_connection.h: one client's TCP connection: its input
//  buffer cut into lines, its output buffer written as the socket takes
//  it, and the bounds on both. No protocol here: the frontend decides
//  what a line means and when to close.
//
//  Input: bytes are read into a buffer that holds at most max_line bytes
//  of a line plus one read; take_line hands out whole lines, without
//  their line ending (\n or \r\n), until none is left. A line longer than
//  max_line is reported as such (its first max_line bytes), so the caller
//  can answer and close. At end of input a last line with no \n counts.
//
//  TLS: after herd_connection_start_tls the same calls run the handshake
//  (non-blocking: each read or flush takes it one step), then read and
//  write through the session. The session may hold decrypted bytes the
//  socket no longer shows (herd_connection_buffered), and may need the
//  socket readable to write or writable to read (herd_connection_tls_wants).
//  An end without TLS's close_notify drops a last line with no \n: an
//  attacker could have cut it.
//
//  Output: append queues bytes; past max_pending the connection is marked
//  dead (a client that does not read is dropped, not waited for); flush
//  writes what the socket takes now and never blocks.

#ifndef HERD_CONNECTION_H_INCLUDED
#define HERD_CONNECTION_H_INCLUDED

typedef struct _herd_connection_t herd_connection_t;

//  What take_line found
#define HERD_CONNECTION_LINE        1   //  A whole line
#define HERD_CONNECTION_NONE        0   //  No whole line yet
#define HERD_CONNECTION_TOO_LONG   -1   //  A line over max_line bytes

//  Takes ownership of fd, a connected non-blocking socket
herd_connection_t *
    herd_connection_new (int fd, size_t max_line, size_t max_pending);

//  Closes the socket
void
    herd_connection_destroy (herd_connection_t **self_p);

int
    herd_connection_fd (herd_connection_t *self);

//  Reads what the socket holds, as far as the input buffer has room.
//  Returns bytes read (>0), 0 at end of input (eof is set), or -1 if
//  nothing was there (EAGAIN) or the read failed (then dead is set).
ssize_t
    herd_connection_read (herd_connection_t *self);

//  When the last bytes were read (CLOCK_REALTIME)
const struct timespec *
    herd_connection_receipt (herd_connection_t *self);

//  The next line held, in *line and *size (borrowed until the next read).
//  Returns HERD_CONNECTION_LINE, _NONE or _TOO_LONG.
int
    herd_connection_take_line (herd_connection_t *self, const char **line, size_t *size);

//  True if the input buffer has room for another read
bool
    herd_connection_can_read (herd_connection_t *self);

//  Input bytes held that are not yet a whole line
size_t
    herd_connection_input_size (herd_connection_t *self);

//  Drops what input is held (after a line too long)
void
    herd_connection_discard_input (herd_connection_t *self);

//  Queues bytes to write. -1 if past max_pending: then dead is set.
int
    herd_connection_append (herd_connection_t *self, const void *data, size_t size);

//  Replaces size queued bytes at offset (from the first byte not yet
//  written) by new_size others. Offsets hold only while nothing is
//  written, so the frontend replaces before it flushes. 0, or -1 if those
//  bytes are not all queued (or the connection is dead).
int
    herd_connection_replace (herd_connection_t *self, size_t offset, size_t size,
                             const void *data, size_t new_size);

//  Writes what the socket takes now. 0, or -1 if the peer is gone (dead).
int
    herd_connection_flush (herd_connection_t *self);

//  Bytes queued, not yet written
size_t
    herd_connection_pending (herd_connection_t *self);

//  The peer closed its writing side
bool
    herd_connection_eof (herd_connection_t *self);

//  Marks the connection for closing now, with a reason for the log
//  (static text); the first reason given is kept
void
    herd_connection_kill (herd_connection_t *self, const char *reason);

bool
    herd_connection_dead (herd_connection_t *self);

//  Why it was killed, or NULL
const char *
    herd_connection_reason (herd_connection_t *self);

//  Speaks TLS from now on, through session (owned by the connection;
//  made with herd_tls_session on its descriptor)
void
    herd_connection_start_tls (herd_connection_t *self, SSL *session);

//  Its TLS session, or NULL on a plain connection
SSL *
    herd_connection_tls (herd_connection_t *self);

//  Its TLS handshake is done
bool
    herd_connection_secured (herd_connection_t *self);

//  Its TLS handshake failed (it is dead, the reason says why)
bool
    herd_connection_tls_failed (herd_connection_t *self);

//  The epoll events TLS needs to go on beyond the usual ones (EPOLLIN
//  while the handshake runs or a write waits on a read, EPOLLOUT while a
//  read waits on a write); 0 on a plain connection
uint32_t
    herd_connection_tls_wants (herd_connection_t *self);

//  True if the TLS session holds decrypted bytes not yet read: epoll
//  will not say so, the caller reads again when there is room
bool
    herd_connection_buffered (herd_connection_t *self);

void
    herd_connection_test (bool verbose);

#endif
