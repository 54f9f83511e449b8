//  core/herd_protocol.h: the client protocol's grammar (docs/PROTOCOL.md
//  section 1) as pure functions: no sockets, no allocation, no state, so
//  the frontend, the bus and the fuzzer share one definition of a command.

#ifndef HERD_PROTOCOL_H_INCLUDED
#define HERD_PROTOCOL_H_INCLUDED

//  A field of a line: points into the caller's buffer, not terminated
typedef struct {
    const char *start;
    size_t size;
} herd_field_t;

//  True if the field is exactly word
bool
    herd_field_is (const herd_field_t *field, const char *word);

typedef enum {
    HERD_LINE_EMPTY,            //  Blank line: ignored, no reply
    HERD_LINE_INVALID,          //  Answered "? <line>"
    HERD_LINE_IAMAT,
    HERD_LINE_WHATSAT,
    HERD_LINE_FORGET
} herd_line_kind_t;

typedef struct {
    herd_line_kind_t kind;
    const char *reason;         //  INVALID: why, for the log (static text)
    herd_field_t client;        //  IAMAT, WHATSAT and FORGET
    herd_field_t coordinates;   //  IAMAT
    herd_field_t time;          //  IAMAT and FORGET
    double latitude;            //  IAMAT, degrees
    double longitude;           //  IAMAT, degrees
    double radius_km;           //  WHATSAT, 0 < radius <= 50
    int max_results;            //  WHATSAT, 1..20
} herd_command_t;

//  An update as servers produce it and the bus carries it, parsed: an AT
//  line, or a forget's GONE line (its tombstone: docs/PROTOCOL.md section
//  1, "FORGET"), which has every field but the coordinates. Every field
//  points into the line, so it is valid as long as the line is.
typedef struct {
    herd_field_t line;          //  The whole line, without a line ending
    bool gone;                  //  A GONE line: coordinates is empty
    herd_field_t server;
    herd_field_t skew;
    herd_field_t client;
    herd_field_t coordinates;
    herd_field_t time;
} herd_at_t;

//  True if the line is empty or all whitespace: no command (it gets no
//  reply, and earns a connection nothing)
bool
    herd_protocol_blank (const char *line, size_t size);

//  Parses one line (without its \n) into command. Never fails: a line
//  that is not a valid command comes back as HERD_LINE_INVALID.
void
    herd_protocol_parse (const char *line, size_t size, herd_command_t *command);

//  Parses and checks an update line, AT or GONE. Returns 0, or -1 if it
//  is neither. The
//  position is checked, not converted (herd_protocol_at_position does):
//  most lines a server parses come from neighbours and are only stored.
int
    herd_protocol_parse_at (const char *line, size_t size, herd_at_t *at);

//  Builds the GONE line that answers a valid FORGET of client at time,
//  received at receipt by server, and fills at. The line's size, or -1 if
//  buffer is too small.
int
    herd_protocol_format_gone (char *buffer, size_t buffer_size, const char *server,
                               const struct timespec *receipt, herd_field_t client, herd_field_t time,
                               herd_at_t *at);

//  The position of a parsed AT line, in degrees
void
    herd_protocol_at_position (const herd_at_t *at, double *latitude, double *longitude);

//  Where an update line's client field would be (its fourth), nothing
//  checked: a hint for a prefetch, never for a decision. 0, or -1 if the
//  line has fewer fields.
int
    herd_protocol_hint_client (const char *line, size_t size, herd_field_t *client);

//  The first half of herd_protocol_parse_at, for the newer-wins compare
//  that comes before any other work on a neighbour's line: splits the
//  line once and checks its shape (AT and six fields, or GONE and five),
//  its client and its client time, filling every field of at. 0, or -1.
//  A 0 does not make it an AT line: herd_protocol_check_peeked does, with
//  the fields as they are, never splitting the line again.
int
    herd_protocol_peek_at (const char *line, size_t size, herd_at_t *at);

//  The second half: checks a peeked line's server, skew and coordinates.
//  0 (it is what herd_protocol_parse_at takes), or -1.
int
    herd_protocol_check_peeked (const herd_at_t *at);

//  Builds the AT line that answers a valid IAMAT received at receipt by
//  server into buffer, and fills at with its fields (pointing into
//  buffer), so the line never needs parsing again. Returns the line's
//  size, or -1 if buffer is too small.
int
    herd_protocol_format_at (char *buffer, size_t buffer_size, const char *server,
                             const struct timespec *receipt, const herd_command_t *iamat,
                             herd_at_t *at);

//  Compares two valid client times exactly, as decimal numbers:
//  <0 if a is earlier, 0 if equal in value, >0 if a is later.
int
    herd_protocol_time_compare (herd_field_t a, herd_field_t b);

//  The client time of a valid AT line: its last field
herd_field_t
    herd_protocol_at_time (const char *line, size_t size);

//  The total order of updates that every server applies alike (newer-
//  wins): the later client time, exactly; for equal times the bytewise
//  greater line (so a GONE line beats every AT line of its time: a
//  forget at T forgets the updates at T). a and b are valid AT lines with their times. <0 if a is
//  older than b, 0 if the same line, >0 if a is newer.
int
    herd_protocol_at_order (const char *a, size_t a_size, herd_field_t a_time,
                            const char *b, size_t b_size, herd_field_t b_time);

//  Reads a decimal number of 1 to 20 digits, nothing else, that fits 64
//  bits, from text (size bytes): true and *value, or false. Leading zeros
//  are read (a caller that wants one way to write a number refuses them).
bool
    herd_protocol_parse_u64 (const char *text, size_t size, uint64_t *value);

//  Writes value in decimal into buffer (21 bytes will do), null-terminated;
//  returns its length. For the hot paths, where snprintf costs too much.
size_t
    herd_protocol_format_u64 (char *buffer, uint64_t value);

//  Formats (receipt - client time) as docs/PROTOCOL.md's skew: a sign, the
//  seconds, nine digits after the point, rounded to the nanosecond.
//  time must be valid. Writes at most 40 bytes; returns buffer.
const char *
    herd_protocol_skew (const struct timespec *receipt, herd_field_t time,
                        char *buffer, size_t buffer_size);

void
    herd_protocol_test (bool verbose);

#endif
