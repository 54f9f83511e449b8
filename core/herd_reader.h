//  core/herd_reader.h: a ZeroMQ socket read in a zloop through its ZMQ_FD.
//
//  zloop_reader hands its sockets to zmq_poll, which asks every one of
//  them for ZMQ_EVENTS before and after it waits: a poll(2) and a getpid(2)
//  each time, for every socket, on every pass. A node has about twenty
//  sockets (its neighbours' SUBs, their monitors and catch-up DEALERs,
//  the admin ROUTER, places, the journal's syncer...), so it made about
//  eighty syscalls a pass, and most passes carry one update. A reader
//  hands the loop the socket's file descriptor instead, and asks the
//  socket for ZMQ_EVENTS only when that fires.
//
//  The descriptor is edge-triggered: it fires when a command reaches the
//  socket's mailbox, and any send or receive on the socket may take that
//  command itself. So, like zloop_reader, the handler is called once a
//  pass while a message waits, and whoever sends on a socket that a reader
//  reads calls herd_reader_check afterwards.

#ifndef HERD_READER_H_INCLUDED
#define HERD_READER_H_INCLUDED

typedef struct _herd_reader_t herd_reader_t;

//  Calls handler (loop, sock, arg) on each pass of loop while a message
//  waits on sock (a zsock_t or a zactor_t), as zloop_reader does; -1 from
//  the handler ends the loop. sock is borrowed and must outlive the reader.
herd_reader_t *
    herd_reader_new (zloop_t *loop, void *sock, zloop_reader_fn handler, void *arg);

//  Takes the socket out of the loop, and frees the reader: when the loop
//  is not running (from outside it, or after it returned)
void
    herd_reader_destroy (herd_reader_t **self_p);

//  The same from a handler of the running loop (not the reader's own):
//  zloop lets go of a poller or a timer only at the end of the pass, so
//  the reader goes quiet now and is freed a second later, or by
//  herd_reader_collect once the loop is done
void
    herd_reader_retire (herd_reader_t **self_p);

//  Frees every reader this thread retired: once its loops have returned
void
    herd_reader_collect (void);

//  After a send on the socket: a message that arrived meanwhile, whose
//  signal the send may have taken, is read on the loop's next pass.
void
    herd_reader_check (herd_reader_t *self);

void
    herd_reader_test (bool verbose);

#endif
