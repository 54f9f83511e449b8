//  core/herd_loop.h: a zloop run for a bounded time. Selftests turn the
//  loops of the classes they test this way, between their own steps, and
//  connect their TCP clients here.

#ifndef HERD_LOOP_H_INCLUDED
#define HERD_LOOP_H_INCLUDED

//  Runs loop until msecs have passed (or a handler ends it), then returns;
//  the loop keeps its readers and timers and can be run again
void
    herd_loop_run_for (zloop_t *loop, int msecs);

//  A TCP client connected to 127.0.0.1:port (blocking): its socket
int
    herd_loop_connect (int port);

void
    herd_loop_test (bool verbose);

#endif
