//  core/herd_actor.h: the start handshake of herd's actors (the node, the
//  places broker). zactor_new only starts the thread; START asks the actor
//  to take its config, bind and load, and it answers OK, or ERROR and one
//  line that says why, which main prints before it exits.

#ifndef HERD_ACTOR_H_INCLUDED
#define HERD_ACTOR_H_INCLUDED

//  Sends START and waits for the answer: 0, or -1 and *error_p (the
//  actor's reason; caller frees)
int
    herd_actor_start (zactor_t *actor, char **error_p);

//  Names the calling thread (at most 15 characters), as top -H, ps -L and
//  perf show it: "herd-node", "herd-places", ... instead of "herd" each
void
    herd_actor_name (const char *name);

//  The actor's side, on its pipe: OK if started is 0, else ERROR reason
void
    herd_actor_started (zsock_t *pipe, int started, const char *reason);

void
    herd_actor_test (bool verbose);

#endif
