//  core/herd_log.h: where a server's zsys log goes (its own file, and stderr on
//  request), and a helper to log untrusted bytes safely.

#ifndef HERD_LOG_H_INCLUDED
#define HERD_LOG_H_INCLUDED

//  Sends zsys logging to filename (appended; its folder is created) and,
//  if to_stderr, to stderr too. filename NULL means stderr only.
//  Returns 0, or -1 with errno set if the file cannot be opened.
int
    herd_log_open (const char *filename, bool to_stderr);

//  Reopens the log file at its name (SIGHUP, after logrotate renamed it):
//  every line goes whole to the old file or the new. 0, or -1 if the new
//  one cannot be opened (logging goes on to the old).
int
    herd_log_reopen (void);

//  Sets how lines are written: format "text" (zsys's lines, as they are)
//  or "json" (one object a line: time, level, server, message), and the
//  lowest level written: "debug", "info", "notice", "warning" or "error"
//  (the traffic log is its own switch and is never filtered). NULL keeps
//  a setting. 0, or -1 for a name it does not know.
int
    herd_log_set_format (const char *format, const char *level);

//  Restores logging to stderr and closes the file
void
    herd_log_close (void);

//  Writes whole lines (the traffic log's batch) straight to the log file
//  (and stderr if teed), in order with the zsys lines of every thread
void
    herd_log_write (const char *data, size_t size);

//  The stream zsys logs to now (stderr before herd_log_open)
FILE *
    herd_log_stream (void);

//  The time now as every text log line carries it, "2026-12-05
//  06:15:23.123 +0000" (four-digit year, milliseconds, zone) into buffer
//  of HERD_LOG_TIME_SIZE bytes or more. Returns buffer.
#define HERD_LOG_TIME_SIZE 40
const char *
    herd_log_time (char *buffer, size_t size);

//  Writes a printable, length-capped rendering of data into buffer
//  (non-printable bytes as \xNN) for logging client input. Returns buffer.
const char *
    herd_log_sample (const char *data, size_t size, char *buffer, size_t buffer_size);

void
    herd_log_test (bool verbose);

#endif
