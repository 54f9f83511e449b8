//  monitor/herd_web.h: herd-monitor --web, the live map. An HTTP server
//  (libmicrohttpd) that serves one self-contained page and what it draws:
//  the land (the places data as faint dots), every client the herd's
//  feeds report (Server-Sent Events, coalesced to a bounded rate), the
//  herd itself (each server's STATE and STATS, asked every second), and a
//  WHATSAT around a client on demand. Every request needs the token.

#ifndef HERD_WEB_H_INCLUDED
#define HERD_WEB_H_INCLUDED

//  Serves on address ("PORT" or "HOST:PORT"; HOST defaults to 127.0.0.1)
//  until interrupted, or for seconds if not 0. token is the credential
//  the browser must show (NULL: one is made and printed). keys is the
//  monitor's (borrowed). 0, or 1 after one line on stderr.
int
    herd_web_run (herd_config_t *config, herd_keys_t *keys, const char *address, const char *token,
                  long seconds);

#endif
