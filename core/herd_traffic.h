//  core/herd_traffic.h: the traffic log (herd/log_traffic): every line a
//  client sends and every reply, in the server's log, at little cost.
//
//  zsys_info costs a localtime, a strftime, a vsnprintf and a write(2)
//  per line; at a few hundred thousand IAMATs a second that was most of
//  what the server did. Here lines are built straight into a buffer, the
//  time prefix is formatted once a second, and the buffer goes to the log
//  stream in one write per loop pass (herd_traffic_flush) or when it
//  passes 64 KiB. The lines look exactly like zsys's ("I: (name) date
//  time text"), so one log holds both, in order to the second; within a
//  pass, traffic lines come out together at its end.

#ifndef HERD_TRAFFIC_H_INCLUDED
#define HERD_TRAFFIC_H_INCLUDED

typedef struct _herd_traffic_t herd_traffic_t;

//  A traffic log for the server called ident
herd_traffic_t *
    herd_traffic_new (const char *ident);

//  Flushes what is held
void
    herd_traffic_destroy (herd_traffic_t **self_p);

//  One line: head (plain text, at most 64 bytes), then data rendered
//  printable (herd_log_sample), then note (plain text, or NULL)
void
    herd_traffic_line (herd_traffic_t *self, const char *head, const char *data, size_t size,
                       const char *note);

//  One line: "client <id> <what>", then the first bytes, rendered
//  printable (herd_log_sample), then " <then>" and the second if given,
//  then note (plain text, may be NULL or "")
void
    herd_traffic_client (herd_traffic_t *self, uint64_t client_id, const char *what,
                         const char *first, size_t first_size,
                         const char *then, const char *second, size_t second_size,
                         const char *note);

//  Writes what is held to the log stream, in one write
void
    herd_traffic_flush (herd_traffic_t *self);

void
    herd_traffic_test (bool verbose);

#endif
