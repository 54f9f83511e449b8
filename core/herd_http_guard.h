//  core/herd_http_guard.h: what no client can hold on a libmicrohttpd
//  endpoint (a server's /metrics and /healthz, the live map), so that a
//  probe or the map's owner always gets in. It keeps every connection in
//  the order they came and, when an address holds its bound or every
//  connection is taken, ends the oldest request connection (of that
//  address first) to make room, as the client port does: slow or idle
//  sockets cannot lock anyone out, they make room for whoever comes.
//  A request connection lives max_age at most; a long-lived stream (the
//  map's events) lives while it reads, and the stalest stream makes room
//  past max_streams. Ending is shutdown(2) on the socket, which the
//  daemon then sees close in its own time.
//
//  The daemon calls herd_http_guard_admit (its accept policy) and
//  herd_http_guard_notify (its connection notifications); the owner calls
//  herd_http_guard_sweep about once a second. Safe from any thread (the
//  daemon may run a thread per connection).

#ifndef HERD_HTTP_GUARD_H_INCLUDED
#define HERD_HTTP_GUARD_H_INCLUDED

#include <microhttpd.h>

typedef struct _herd_http_guard_t herd_http_guard_t;

typedef struct {
    size_t max_connections;     //  Open at once (give the daemon twice this)
    size_t max_per_address;     //  Of which from one address
    size_t max_streams;         //  Of which long-lived streams
    int64_t max_age;            //  msecs a request connection may live
    int64_t max_stall;          //  msecs a stream may go without taking a byte
} herd_http_guard_limits_t;

herd_http_guard_t *
    herd_http_guard_new (const herd_http_guard_limits_t *limits);

//  After the daemon has stopped
void
    herd_http_guard_destroy (herd_http_guard_t **self_p);

//  The daemon's accept policy (MHD_AcceptPolicyCallback, arg the guard):
//  admits, ending another connection first if it must; MHD_NO only if
//  every connection it could end is a stream or already on its way out
enum MHD_Result
    herd_http_guard_admit (void *arg, const struct sockaddr *address, socklen_t size);

//  The daemon's connection notifications (MHD_NotifyConnectionCallback,
//  arg the guard)
void
    herd_http_guard_notify (void *arg, struct MHD_Connection *connection, void **socket_context,
                            enum MHD_ConnectionNotificationCode code);

//  The daemon's error log (MHD_OPTION_EXTERNAL_LOGGER, arg the guard):
//  its lines, most of them caused by clients ("Failed to send ..."), go
//  to the log as warnings, limited as every client-caused line is
void
    herd_http_guard_log (void *arg, const char *format, va_list arguments);

//  The connection now carries a stream: it lives past max_age while it
//  reads. Past max_streams the stalest other stream is ended.
void
    herd_http_guard_stream (herd_http_guard_t *self, struct MHD_Connection *connection);

//  The stream took bytes (from its content reader)
void
    herd_http_guard_progress (herd_http_guard_t *self, struct MHD_Connection *connection);

//  Ends request connections older than max_age and streams stalled past
//  max_stall. Returns how many it ended.
size_t
    herd_http_guard_sweep (herd_http_guard_t *self);

//  Connections ended since start: to make room, for age, for stalling;
//  and refused
void
    herd_http_guard_counts (herd_http_guard_t *self, uint64_t *evicted, uint64_t *over_age,
                            uint64_t *stalled, uint64_t *refused);

void
    herd_http_guard_test (bool verbose);

#endif
