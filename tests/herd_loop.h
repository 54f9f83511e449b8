//  tests/herd_loop.h: test scaffolding, not a class: a zloop run for a
//  bounded time. Selftests turn the loops of the classes they test this
//  way, between their own steps, and connect their TCP clients here.
//  Declared for the classes' selftests (core/herd_core_layer.h includes
//  it), defined in tests/herd_loop.c and linked into herd_selftest alone:
//  the shipped binaries are linked with --gc-sections, which drops every
//  selftest, and with them every call to this.

#ifndef HERD_LOOP_H_INCLUDED
#define HERD_LOOP_H_INCLUDED

//  Runs loop until msecs have passed (or a handler ends it), then returns;
//  the loop keeps its readers and timers and can be run again
void
    herd_loop_run_for (zloop_t *loop, int msecs);

//  A TCP client connected to 127.0.0.1:port (blocking): its socket
int
    herd_loop_connect (int port);

#endif
