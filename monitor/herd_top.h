//  monitor/herd_top.h: herd-monitor --top, a live view of a herd, in the
//  way of redis-cli --stat and nats-top: one row per server, redrawn every
//  second, from each server's admin endpoint (STATE and STATS, asked with
//  the monitor's key).

#ifndef HERD_TOP_H_INCLUDED
#define HERD_TOP_H_INCLUDED

//  Shows servers (names in config) until interrupted, or for seconds if
//  not 0. keys is the monitor's (borrowed). 0, or 1 after one line on
//  stderr if the view cannot start.
int
    herd_top_run (herd_config_t *config, herd_keys_t *keys, zlistx_t *servers, long seconds);

#endif
