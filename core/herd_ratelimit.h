//  core/herd_ratelimit.h: log lines that a neighbour, a client or a
//  monitor can cause, limited per source as the kernel's printk ratelimit
//  does: at most burst lines from one source per interval; past that the
//  lines are counted, not written, and the next line written from that
//  source says how many were suppressed. A source is a string: a
//  neighbour's name, a client's address, a monitor's key. At most
//  max_sources are told apart; past that, new sources share one budget.
//  One limiter belongs to one thread (the loop of whoever logs).

#ifndef HERD_RATELIMIT_H_INCLUDED
#define HERD_RATELIMIT_H_INCLUDED

typedef struct _herd_ratelimit_t herd_ratelimit_t;

herd_ratelimit_t *
    herd_ratelimit_new (int64_t interval_msecs, size_t burst, size_t max_sources);

void
    herd_ratelimit_destroy (herd_ratelimit_t **self_p);

//  Logs the line at level (LOG_INFO, LOG_WARNING or LOG_ERR) unless
//  source is past its burst; a line written after some were suppressed
//  ends with how many
void
    herd_ratelimit_log (herd_ratelimit_t *self, const char *source, int level, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  Lines suppressed by every limiter of the process since it started
uint64_t
    herd_ratelimit_suppressed_total (void);

void
    herd_ratelimit_test (bool verbose);

#endif
