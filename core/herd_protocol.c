//  core/herd_protocol.c: parse and check client commands and AT lines.

#include "core/herd_core_layer.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

//  Client times hold at most this many integer digits, so that any skew
//  fits the arithmetic below (10^18 s is 30 billion years)
#define S_TIME_DIGITS_MAX   18
#define S_FIELDS_MAX        6

//  C's isspace in the C locale, without depending on the locale: a table,
//  since every byte of every line a server parses goes through it
static const bool s_space [256] = {
    [' '] = true, ['\t'] = true, ['\n'] = true, ['\v'] = true, ['\f'] = true, ['\r'] = true
};

static inline bool
s_is_space (char byte)
{
    return s_space [(unsigned char) byte];
}

static inline bool
s_is_digit (char byte)
{
    return byte >= '0' && byte <= '9';
}

//  A bit for each of up to 64 bytes from line that is whitespace (bit 0:
//  the first byte); bits past size are set too, as if the line went on
//  in spaces. Sixteen bytes at a compare where SSE2 is (every x86-64): a
//  line is split at every server that hears it, thirteen times an update
//  in the shipped herd, and a byte at a time that was an eighth of the
//  herd's samples
static inline uint64_t
s_space_mask (const char *line, size_t size)
{
    uint64_t mask = 0;
#ifdef __SSE2__
    char padded [64];
    if (size < 64) {
        memset (padded, ' ', sizeof padded);
        memcpy (padded, line, size);
        line = padded;
    }
    const __m128i blank = _mm_set1_epi8 (' '), tab = _mm_set1_epi8 ('\t'), four = _mm_set1_epi8 (4);
    for (int block = 0; block < 4; block++) {
        __m128i bytes = _mm_loadu_si128 ((const __m128i *) (line + 16 * block));
        //  ' ', or '\t' to '\r' (bytes - '\t', unsigned, at most 4)
        __m128i low = _mm_sub_epi8 (bytes, tab);
        __m128i spaces = _mm_or_si128 (_mm_cmpeq_epi8 (bytes, blank),
                                       _mm_cmpeq_epi8 (_mm_max_epu8 (low, four), four));
        mask |= (uint64_t) (unsigned) _mm_movemask_epi8 (spaces) << (16 * block);
    }
#else
    for (size_t index = 0; index < 64; index++)
        if (index >= size || s_is_space (line [index]))
            mask |= (uint64_t) 1 << index;
#endif
    return mask;
}

//  Splits on runs of whitespace; returns the field count, capped at
//  max_fields + 1 so "too many" is still visible. Sixty-four bytes at a
//  time: where fields start and end are the mask's edges
static size_t
s_split (const char *line, size_t size, herd_field_t *fields, size_t max_fields)
{
    size_t count = 0, start = 0;
    uint64_t carry = 0;                 //  1 if a field runs on into this block
    for (size_t base = 0; base < size; base += 64) {
        uint64_t word = ~s_space_mask (line + base, size - base);
        uint64_t before = word << 1 | carry;        //  Was the byte before in a field?
        uint64_t edges = (word & ~before) | (~word & before);
        carry = word >> 63;
        while (edges) {
            size_t index = base + (size_t) __builtin_ctzll (edges);
            edges &= edges - 1;
            if (word >> (index - base) & 1) {
                start = index;                      //  A field starts here
                continue;
            }
            if (count == max_fields)                //  ... and ended before here
                return max_fields + 1;
            fields [count].start = line + start;
            fields [count].size = index - start;
            count++;
        }
    }
    if (carry) {                        //  A last field up to a 64-byte boundary
        if (count == max_fields)
            return max_fields + 1;
        fields [count].start = line + start;
        fields [count].size = size - start;
        count++;
    }
    return count;
}

bool
herd_field_is (const herd_field_t *field, const char *word)
{
    assert (field && word);
    return field->size == strlen (word) && memcmp (field->start, word, field->size) == 0;
}

//  1-255 bytes of printable ASCII without whitespace
static bool
s_client_valid (herd_field_t field)
{
    if (field.size < 1 || field.size > HERD_CLIENT_ID_MAX)
        return false;
    for (size_t index = 0; index < field.size; index++)
        if (field.start [index] < 0x21 || field.start [index] > 0x7e)
            return false;
    return true;
}

//  Digits with an optional fraction (digits after a point). Returns the
//  number of bytes matched from start; integer digits in *integer_digits.
static size_t
s_match_decimal (const char *start, size_t size, size_t *integer_digits)
{
    size_t index = 0;
    while (index < size && s_is_digit (start [index]))
        index++;
    *integer_digits = index;
    if (index == 0)
        return 0;
    if (index < size && start [index] == '.') {
        size_t fraction = index + 1;
        while (fraction < size && s_is_digit (start [fraction]))
            fraction++;
        if (fraction > index + 1)
            index = fraction;
        else
            return 0;               //  "12." has no fraction digits
    }
    return index;
}

//  Value of the integer digits, exactly, or -1 if above limit; and whether
//  any fraction digit is nonzero, so that "+90.000" passes and "+90.01" fails
static bool
s_within (const char *start, size_t size, size_t integer_digits, long limit)
{
    long value = 0;
    for (size_t index = 0; index < integer_digits; index++) {
        value = value * 10 + (start [index] - '0');
        if (value > limit)
            return false;
    }
    if (value < limit)
        return true;
    for (size_t index = integer_digits + 1; index < size; index++)
        if (start [index] != '0')
            return false;
    return true;
}

//  ISO 6709 decimal degrees: [+-]lat[+-]lon, e.g. +34.068930-118.445127
static bool
s_coordinates_parse (herd_field_t field, double *latitude, double *longitude)
{
    const char *cursor = field.start;
    size_t size = field.size;
    if (size < 4 || (*cursor != '+' && *cursor != '-'))
        return false;
    size_t integer_digits;
    size_t latitude_size = s_match_decimal (cursor + 1, size - 1, &integer_digits);
    if (!latitude_size || !s_within (cursor + 1, latitude_size, integer_digits, 90))
        return false;
    const char *second = cursor + 1 + latitude_size;
    size_t rest = size - 1 - latitude_size;
    if (rest < 2 || (*second != '+' && *second != '-'))
        return false;
    size_t longitude_size = s_match_decimal (second + 1, rest - 1, &integer_digits);
    if (longitude_size != rest - 1
    || !s_within (second + 1, longitude_size, integer_digits, 180))
        return false;
    //  Both parts are now plain decimals; strtod stops at the second sign
    if (latitude)
        *latitude = strtod (cursor, NULL);
    if (longitude)
        *longitude = strtod (second, NULL);
    return true;
}

static bool
s_time_valid (herd_field_t field)
{
    size_t integer_digits;
    if (s_match_decimal (field.start, field.size, &integer_digits) != field.size)
        return false;
    //  Leading zeros don't count toward the limit
    size_t leading = 0;
    while (leading + 1 < integer_digits && field.start [leading] == '0')
        leading++;
    return integer_digits - leading <= S_TIME_DIGITS_MAX;
}

//  "a number, greater than 0 and at most 50"
static bool
s_radius_parse (herd_field_t field, double *radius_km)
{
    size_t integer_digits;
    if (field.size > 32 || s_match_decimal (field.start, field.size, &integer_digits) != field.size)
        return false;
    char text [33];
    memcpy (text, field.start, field.size);
    text [field.size] = 0;
    *radius_km = strtod (text, NULL);
    return *radius_km > 0 && *radius_km <= HERD_RADIUS_KM_MAX;
}

static bool
s_count_parse (herd_field_t field, int *count)
{
    long value = 0;
    if (field.size == 0 || field.size > 9)
        return false;
    for (size_t index = 0; index < field.size; index++) {
        if (!s_is_digit (field.start [index]))
            return false;
        value = value * 10 + (field.start [index] - '0');
    }
    *count = (int) value;
    return value >= 1 && value <= HERD_RESULTS_MAX;
}

static void
s_invalid (herd_command_t *command, const char *reason)
{
    command->kind = HERD_LINE_INVALID;
    command->reason = reason;
}

bool
herd_protocol_blank (const char *line, size_t size)
{
    for (size_t index = 0; index < size; index++)
        if (!s_is_space (line [index]))
            return false;
    return true;
}

void
herd_protocol_parse (const char *line, size_t size, herd_command_t *command)
{
    assert (command);
    memset (command, 0, sizeof (herd_command_t));
    herd_field_t fields [S_FIELDS_MAX];
    size_t count = s_split (line, size, fields, S_FIELDS_MAX);
    if (count == 0) {
        command->kind = HERD_LINE_EMPTY;
        return;
    }
    if (herd_field_is (&fields [0], "IAMAT")) {
        if (count != 4)
            return s_invalid (command, "IAMAT takes 3 fields");
        if (!s_client_valid (fields [1]))
            return s_invalid (command, "bad client id");
        if (!s_coordinates_parse (fields [2], &command->latitude, &command->longitude))
            return s_invalid (command, "bad coordinates");
        if (!s_time_valid (fields [3]))
            return s_invalid (command, "bad client time");
        command->kind = HERD_LINE_IAMAT;
        command->client = fields [1];
        command->coordinates = fields [2];
        command->time = fields [3];
    }
    else
    if (herd_field_is (&fields [0], "WHATSAT")) {
        if (count != 4)
            return s_invalid (command, "WHATSAT takes 3 fields");
        if (!s_client_valid (fields [1]))
            return s_invalid (command, "bad client id");
        if (!s_radius_parse (fields [2], &command->radius_km))
            return s_invalid (command, "radius must be a number above 0 and at most 50");
        if (!s_count_parse (fields [3], &command->max_results))
            return s_invalid (command, "max results must be a whole number from 1 to 20");
        command->kind = HERD_LINE_WHATSAT;
        command->client = fields [1];
    }
    else
    if (herd_field_is (&fields [0], "FORGET")) {
        if (count != 3)
            return s_invalid (command, "FORGET takes 2 fields");
        if (!s_client_valid (fields [1]))
            return s_invalid (command, "bad client id");
        if (!s_time_valid (fields [2]))
            return s_invalid (command, "bad client time");
        command->kind = HERD_LINE_FORGET;
        command->client = fields [1];
        command->time = fields [2];
    }
    else
        s_invalid (command, "unknown command");
}

int
herd_protocol_peek_at (const char *line, size_t size, herd_at_t *at)
{
    assert (line && at);
    memset (at, 0, sizeof (herd_at_t));
    herd_field_t fields [S_FIELDS_MAX];
    size_t count = s_split (line, size, fields, S_FIELDS_MAX);
    //  "AT server skew client coordinates time", or a forget's "GONE
    //  server skew client time": the same fields but the position
    bool gone = count == 5 && herd_field_is (&fields [0], "GONE");
    if (!gone && (count != 6 || !herd_field_is (&fields [0], "AT")))
        return -1;
    if (!s_client_valid (fields [3]) || !s_time_valid (fields [count - 1]))
        return -1;
    at->line.start = line;
    at->line.size = size;
    at->gone = gone;
    at->server = fields [1];
    at->skew = fields [2];
    at->client = fields [3];
    if (!gone)
        at->coordinates = fields [4];
    at->time = fields [count - 1];
    return 0;
}

int
herd_protocol_check_peeked (const herd_at_t *at)
{
    assert (at);
    if (!at->gone && !s_coordinates_parse (at->coordinates, NULL, NULL))
        return -1;
    if (!s_client_valid (at->server))
        return -1;
    herd_field_t skew = at->skew;
    size_t integer_digits;
    if (skew.size < 2 || (skew.start [0] != '+' && skew.start [0] != '-')
    ||  s_match_decimal (skew.start + 1, skew.size - 1, &integer_digits) != skew.size - 1)
        return -1;
    return 0;
}

int
herd_protocol_parse_at (const char *line, size_t size, herd_at_t *at)
{
    assert (at);
    if (herd_protocol_peek_at (line, size, at) || herd_protocol_check_peeked (at)) {
        memset (at, 0, sizeof (herd_at_t));
        return -1;
    }
    return 0;
}

int
herd_protocol_format_gone (char *buffer, size_t buffer_size, const char *server,
                           const struct timespec *receipt, herd_field_t client, herd_field_t time,
                           herd_at_t *at)
{
    assert (buffer && server && receipt && at);
    char skew [48];
    herd_protocol_skew (receipt, time, skew, sizeof skew);
    int size = snprintf (buffer, buffer_size, "GONE %s %s %.*s %.*s", server, skew,
                         (int) client.size, client.start, (int) time.size, time.start);
    if (size < 0 || (size_t) size >= buffer_size)
        return -1;
    int rc = herd_protocol_parse_at (buffer, (size_t) size, at);
    assert (rc == 0);
    return size;
}

int
herd_protocol_format_at (char *buffer, size_t buffer_size, const char *server,
                         const struct timespec *receipt, const herd_command_t *iamat,
                         herd_at_t *at)
{
    assert (iamat && iamat->kind == HERD_LINE_IAMAT);
    char skew [48];
    herd_protocol_skew (receipt, iamat->time, skew, sizeof skew);
    size_t server_size = strlen (server);
    size_t skew_size = strlen (skew);
    //  "AT <server> <skew> <client> <coordinates> <time>", by hand: this
    //  runs for every IAMAT, and snprintf cost more than the rest of it
    size_t size = 3 + server_size + 1 + skew_size + 1 + iamat->client.size + 1
                + iamat->coordinates.size + 1 + iamat->time.size;
    if (size >= buffer_size)
        return -1;
    char *end = buffer;
    const herd_field_t parts [] = {
        { "AT", 2 }, { server, server_size }, { skew, skew_size },
        iamat->client, iamat->coordinates, iamat->time };
    for (size_t index = 0; index < 6; index++) {
        if (index)
            *end++ = ' ';
        memcpy (end, parts [index].start, parts [index].size);
        end += parts [index].size;
    }
    *end = 0;
    //  The fields sit where the format put them, one space apart
    herd_field_t fields [5] = {
        { buffer + 3, server_size },
        { buffer + 3 + server_size + 1, skew_size },
        { NULL, iamat->client.size },
        { NULL, iamat->coordinates.size },
        { NULL, iamat->time.size } };
    for (size_t index = 2; index < 5; index++)
        fields [index].start = fields [index - 1].start + fields [index - 1].size + 1;
    at->line.start = buffer;
    at->line.size = size;
    at->gone = false;
    at->server = fields [0];
    at->skew = fields [1];
    at->client = fields [2];
    at->coordinates = fields [3];
    at->time = fields [4];
    return (int) size;
}

void
herd_protocol_at_position (const herd_at_t *at, double *latitude, double *longitude)
{
    assert (at && latitude && longitude);
    //  Checked when parsed: a sign, a decimal, a sign, a decimal
    const char *start = at->coordinates.start;
    const char *second = start + 1;
    while (*second != '+' && *second != '-')
        second++;
    *latitude = strtod (start, NULL);
    *longitude = strtod (second, NULL);
}

int
herd_protocol_hint_client (const char *line, size_t size, herd_field_t *client)
{
    assert (line && client);
    //  The fourth run of non-space bytes among the first 64 (a client id
    //  further in is not hinted)
    uint64_t word = ~s_space_mask (line, size);
    uint64_t starts = word & ~(word << 1);
    for (int field = 0; field < 3 && starts; field++)
        starts &= starts - 1;
    if (!starts)
        return -1;
    size_t start = (size_t) __builtin_ctzll (starts);
    uint64_t after = ~word >> start;                //  Spaces from the start on
    size_t end = after? start + (size_t) __builtin_ctzll (after): 64;
    if (start >= size)
        return -1;
    client->start = line + start;
    client->size = (end < size? end: size) - start;
    return 0;
}

bool
herd_protocol_parse_u64 (const char *text, size_t size, uint64_t *value)
{
    assert (text && value);
    if (size == 0 || size > 20)
        return false;
    uint64_t number = 0;
    for (size_t index = 0; index < size; index++) {
        if (!s_is_digit (text [index]))
            return false;
        uint64_t digit = (uint64_t) (text [index] - '0');
        if (number > (UINT64_MAX - digit) / 10)
            return false;               //  Past 64 bits
        number = number * 10 + digit;
    }
    *value = number;
    return true;
}

size_t
herd_protocol_format_u64 (char *buffer, uint64_t value)
{
    char digits [20];
    size_t count = 0;
    do {
        digits [count++] = (char) ('0' + value % 10);
        value /= 10;
    } while (value);
    for (size_t index = 0; index < count; index++)
        buffer [index] = digits [count - 1 - index];
    buffer [count] = 0;
    return count;
}

int
herd_protocol_time_compare (herd_field_t a, herd_field_t b)
{
    //  Integer parts: without leading zeros, the longer is larger, else
    //  compare digit by digit; then fractions digit by digit, missing = 0
    const char *a_point = memchr (a.start, '.', a.size);
    const char *b_point = memchr (b.start, '.', b.size);
    size_t a_integer = a_point? (size_t) (a_point - a.start): a.size;
    size_t b_integer = b_point? (size_t) (b_point - b.start): b.size;
    size_t a_skip = 0, b_skip = 0;
    while (a_skip + 1 < a_integer && a.start [a_skip] == '0')
        a_skip++;
    while (b_skip + 1 < b_integer && b.start [b_skip] == '0')
        b_skip++;
    if (a_integer - a_skip != b_integer - b_skip)
        return a_integer - a_skip < b_integer - b_skip? -1: 1;
    int order = memcmp (a.start + a_skip, b.start + b_skip, a_integer - a_skip);
    if (order)
        return order < 0? -1: 1;
    const char *a_fraction = a_point? a_point + 1: a.start + a.size;
    const char *b_fraction = b_point? b_point + 1: b.start + b.size;
    size_t a_digits = (size_t) (a.start + a.size - a_fraction);
    size_t b_digits = (size_t) (b.start + b.size - b_fraction);
    size_t longest = a_digits > b_digits? a_digits: b_digits;
    for (size_t index = 0; index < longest; index++) {
        char a_digit = index < a_digits? a_fraction [index]: '0';
        char b_digit = index < b_digits? b_fraction [index]: '0';
        if (a_digit != b_digit)
            return a_digit < b_digit? -1: 1;
    }
    return 0;
}

herd_field_t
herd_protocol_at_time (const char *line, size_t size)
{
    assert (line);
    const char *space = (const char *) memrchr (line, ' ', size);
    assert (space);
    herd_field_t time = { space + 1, size - (size_t) (space + 1 - line) };
    return time;
}

int
herd_protocol_at_order (const char *a, size_t a_size, herd_field_t a_time,
                        const char *b, size_t b_size, herd_field_t b_time)
{
    assert (a && b);
    int order = herd_protocol_time_compare (a_time, b_time);
    if (order == 0) {
        order = memcmp (a, b, a_size < b_size? a_size: b_size);
        if (order == 0)
            order = a_size < b_size? -1: a_size > b_size? 1: 0;
    }
    return order;
}

const char *
herd_protocol_skew (const struct timespec *receipt, herd_field_t time,
                    char *buffer, size_t buffer_size)
{
    assert (buffer_size >= 40);
    //  Client time in nanoseconds, rounded at the tenth fraction digit
    __int128 client = 0;
    size_t index = 0;
    for (; index < time.size && time.start [index] != '.'; index++)
        client = client * 10 + (time.start [index] - '0');
    size_t fraction_digits = 0;
    if (index < time.size)
        index++;                    //  Skip the point
    for (; index < time.size && fraction_digits < 9; index++, fraction_digits++)
        client = client * 10 + (time.start [index] - '0');
    for (; fraction_digits < 9; fraction_digits++)
        client *= 10;
    if (index < time.size && time.start [index] >= '5')
        client += 1;
    __int128 skew = (__int128) receipt->tv_sec * 1000000000 + receipt->tv_nsec - client;
    char sign = skew < 0? '-': '+';
    if (skew < 0)
        skew = -skew;
    //  "<sign><seconds>.<nine digits>", by hand as the AT line is
    buffer [0] = sign;
    size_t used = 1 + herd_protocol_format_u64 (buffer + 1, (uint64_t) (skew / 1000000000));
    buffer [used++] = '.';
    uint64_t nanoseconds = (uint64_t) (skew % 1000000000);
    for (int digit = 8; digit >= 0; digit--) {
        buffer [used + digit] = (char) ('0' + nanoseconds % 10);
        nanoseconds /= 10;
    }
    buffer [used + 9] = 0;
    return buffer;
}

//  --------------------------------------------------------------------------
//  Selftest

static herd_command_t
s_parse (const char *line)
{
    herd_command_t command;
    herd_protocol_parse (line, strlen (line), &command);
    return command;
}

static herd_field_t
s_field (const char *text)
{
    herd_field_t field = { text, strlen (text) };
    return field;
}

void
herd_protocol_test (bool verbose)
{
    printf (" * herd_protocol: ");
    if (verbose)
        printf ("\n");
    //  The split by masks finds what a byte at a time finds, for every
    //  byte value, at every length across the 64-byte blocks
    char noise [200];
    for (int round = 0; round < 20000; round++) {
        size_t length = (size_t) (rand () % 200);
        for (size_t index = 0; index < length; index++) {
            int pick = rand () % 4;
            noise [index] = pick == 0? ' ': pick == 1? (char) (9 + rand () % 6): (char) (rand () % 256);
        }
        herd_field_t found [8], expected [8];
        size_t found_count = s_split (noise, length, found, 7), expected_count = 0;
        for (size_t index = 0; index < length && expected_count < 8; ) {
            while (index < length && s_is_space (noise [index]))
                index++;
            if (index == length)
                break;
            size_t start = index;
            while (index < length && !s_is_space (noise [index]))
                index++;
            if (expected_count < 7) {
                expected [expected_count].start = noise + start;
                expected [expected_count].size = index - start;
            }
            expected_count++;
        }
        assert (found_count == expected_count);
        for (size_t field = 0; field < found_count && field < 7; field++)
            assert (found [field].start == expected [field].start && found [field].size == expected [field].size);
    }
    //  The prefetch hint: the fourth field, whatever it holds
    herd_field_t hint;
    const char *hinted = "AT Bailey +0.1 kiwi +1+1 5";
    assert (herd_protocol_hint_client (hinted, strlen (hinted), &hint) == 0);
    assert (hint.size == 4 && !memcmp (hint.start, "kiwi", 4));
    assert (herd_protocol_hint_client ("GONE B +0.1 pear", 16, &hint) == 0 && hint.size == 4);
    assert (herd_protocol_hint_client ("AT Bailey +0.1", 14, &hint) == -1);
    herd_command_t command = s_parse ("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503");
    assert (command.kind == HERD_LINE_IAMAT);
    assert (command.client.size == 16);
    assert (fabs (command.latitude - 34.068930) < 1e-9);
    assert (fabs (command.longitude + 118.445127) < 1e-9);
    assert (command.time.size == strlen ("1621464827.959498503"));

    command = s_parse (" \tIAMAT  a +12-118   1\r");
    assert (command.kind == HERD_LINE_IAMAT);
    assert (command.latitude == 12 && command.longitude == -118);
    assert (s_parse ("IAMAT a +90-180 1").kind == HERD_LINE_IAMAT);
    assert (s_parse ("IAMAT a +90.000-180.0 1").kind == HERD_LINE_IAMAT);
    assert (s_parse ("IAMAT a -90.0+180 1.5").kind == HERD_LINE_IAMAT);

    //  Every kind of bad input
    const char *invalid [] = {
        "IAMAT a +34-118", "IAMAT a +34-118 1 2", "IAMAT", "iamat a +34-118 1",
        "IAMAT a 34-118 1", "IAMAT a +34.-118 1", "IAMAT a +34-118. 1",
        "IAMAT a +90.01-118 1", "IAMAT a +34-180.5 1", "IAMAT a +34+181 1",
        "IAMAT a +3a-118 1", "IAMAT a +34-118x 1", "IAMAT a +34 1", "IAMAT a ++34-118 1",
        "IAMAT a +34-118 -1", "IAMAT a +34-118 1e9", "IAMAT a +34-118 abc",
        "IAMAT a +34-118 1.", "IAMAT a +34-118 1234567890123456789",
        "IAMAT a\x01 +34-118 1", "IAMAT \xc3\xa9 +34-118 1",
        "WHATSAT a 10", "WHATSAT a 0 5", "WHATSAT a 50.01 5", "WHATSAT a -1 5",
        "WHATSAT a 10 0", "WHATSAT a 10 21", "WHATSAT a 10 5.0", "WHATSAT a ten 5",
        "WHATSAT a 1e1 5", "WHATSAT a nan 5", "WHATSAT a 10 5 6",
        "AT Clark +0.263873386 kiwi +34-118 1", "HELLO", "\x01\x02\xff",
    };
    for (size_t index = 0; index < sizeof invalid / sizeof invalid [0]; index++) {
        command = s_parse (invalid [index]);
        if (command.kind != HERD_LINE_INVALID) {
            printf ("accepted: %s\n", invalid [index]);
            assert (false);
        }
        assert (command.reason);
    }
    char long_id [300];
    memset (long_id, 'x', sizeof long_id);
    snprintf (long_id, sizeof long_id, "IAMAT %0256d +1+1 1", 0);
    assert (s_parse (long_id).kind == HERD_LINE_INVALID);
    snprintf (long_id, sizeof long_id, "IAMAT %0255d +1+1 1", 0);
    assert (s_parse (long_id).kind == HERD_LINE_IAMAT);

    assert (s_parse ("").kind == HERD_LINE_EMPTY);
    assert (s_parse (" \t\r\v\f").kind == HERD_LINE_EMPTY);
    assert (herd_protocol_blank ("", 0) && herd_protocol_blank (" \t\r\v\f", 5));
    assert (!herd_protocol_blank (" x ", 3));

    command = s_parse ("WHATSAT kiwi.cs.ucla.edu 10 5");
    assert (command.kind == HERD_LINE_WHATSAT);
    assert (command.radius_km == 10 && command.max_results == 5);
    command = s_parse ("WHATSAT k 0.5 20");
    assert (command.kind == HERD_LINE_WHATSAT && command.radius_km == 0.5);
    assert (s_parse ("WHATSAT k 50 01").kind == HERD_LINE_WHATSAT);
    //  Numbers of the wire formats: 1 to 20 digits within 64 bits
    {
        uint64_t number = 0;
        assert (herd_protocol_parse_u64 ("18446744073709551615", 20, &number) && number == UINT64_MAX);
        assert (!herd_protocol_parse_u64 ("18446744073709551616", 20, &number));
        assert (!herd_protocol_parse_u64 ("123456789012345678901", 21, &number));
        assert (!herd_protocol_parse_u64 ("", 0, &number) && !herd_protocol_parse_u64 ("1x", 2, &number));
        assert (herd_protocol_parse_u64 ("007", 3, &number) && number == 7);
    }
    //  FORGET: a client and a time
    command = s_parse ("FORGET kiwi 1621464827.959498503");
    assert (command.kind == HERD_LINE_FORGET && herd_field_is (&command.time, "1621464827.959498503"));
    assert (s_parse ("FORGET kiwi").kind == HERD_LINE_INVALID);
    assert (s_parse ("FORGET kiwi yesterday").kind == HERD_LINE_INVALID);
    assert (s_parse ("FORGET kiwi 1 2").kind == HERD_LINE_INVALID);
    //  Its GONE line parses as an update without a position, and beats
    //  every AT line of its time
    {
        char gone [200];
        struct timespec receipt = { 1621464828, 0 };
        herd_at_t parsed;
        int gone_size = herd_protocol_format_gone (gone, sizeof gone, "Clark", &receipt, command.client,
                                                   command.time, &parsed);
        assert (gone_size > 0 && streq (gone, "GONE Clark +0.040501497 kiwi 1621464827.959498503"));
        assert (parsed.gone && parsed.coordinates.size == 0 && herd_field_is (&parsed.client, "kiwi"));
        herd_at_t again;
        assert (herd_protocol_parse_at (gone, gone_size, &again) == 0 && again.gone);
        assert (herd_protocol_parse_at ("GONE Clark +0.1 kiwi +1+1 5", 27, &again) == -1);
        const char *at = "AT Zed +9.1 kiwi +1+1 1621464827.959498503";
        assert (herd_protocol_at_order (gone, gone_size, parsed.time, at, strlen (at),
                                        herd_protocol_at_time (at, strlen (at))) > 0);
        herd_at_t peeked;
        assert (herd_protocol_peek_at (gone, gone_size, &peeked) == 0 && herd_field_is (&peeked.time, "1621464827.959498503"));
        assert (peeked.gone && herd_protocol_check_peeked (&peeked) == 0);
    }

    //  AT lines
    herd_at_t at;
    const char *line = "AT Clark +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503";
    assert (herd_protocol_parse_at (line, strlen (line), &at) == 0);
    assert (at.line.start == line && at.line.size == strlen (line));
    assert (at.server.size == 5 && memcmp (at.server.start, "Clark", 5) == 0);
    assert (at.time.size == 20);
    assert (herd_protocol_parse_at ("AT a b c", 8, &at) == -1);
    line = "AT Clark 0.2 kiwi +34-118 1";
    assert (herd_protocol_parse_at (line, strlen (line), &at) == -1);

    //  Exact decimal comparison: a double could not tell these apart
    assert (herd_protocol_time_compare (s_field ("1621464827.959498503"),
                                        s_field ("1621464827.959498504")) < 0);
    assert (herd_protocol_time_compare (s_field ("1621464827.959498504"),
                                        s_field ("1621464827.959498503")) > 0);
    assert (herd_protocol_time_compare (s_field ("10"), s_field ("9.999")) > 0);
    assert (herd_protocol_time_compare (s_field ("010.50"), s_field ("10.5")) == 0);
    assert (herd_protocol_time_compare (s_field ("1.05"), s_field ("1.5")) < 0);
    assert (herd_protocol_time_compare (s_field ("0"), s_field ("0.000")) == 0);
    //  The order of updates: time first, then the bytes of the line
    const char *early = "AT A +0.1 kiwi +1+1 10", *late = "AT A +0.1 kiwi +1+1 10.5",
               *same_time = "AT B +0.1 kiwi +1+1 10.0";
    herd_field_t early_time = herd_protocol_at_time (early, strlen (early));
    assert (early_time.size == 2 && !memcmp (early_time.start, "10", 2));
    assert (herd_protocol_at_order (late, strlen (late), herd_protocol_at_time (late, strlen (late)),
                                    early, strlen (early), early_time) > 0);
    assert (herd_protocol_at_order (same_time, strlen (same_time), herd_protocol_at_time (same_time, strlen (same_time)),
                                    early, strlen (early), early_time) > 0);      //  "B" > "A"
    assert (herd_protocol_at_order (early, strlen (early), early_time, early, strlen (early), early_time) == 0);

    //  Numbers by hand
    char buffer [48];
    assert (herd_protocol_format_u64 (buffer, 0) == 1 && streq (buffer, "0"));
    assert (herd_protocol_format_u64 (buffer, UINT64_MAX) == 20 && streq (buffer, "18446744073709551615"));

    //  Skew
    struct timespec receipt = { 1621464828, 223372889 };
    herd_protocol_skew (&receipt, s_field ("1621464827.959498503"), buffer, sizeof buffer);
    assert (streq (buffer, "+0.263874386"));
    herd_protocol_skew (&receipt, s_field ("1621464830"), buffer, sizeof buffer);
    assert (streq (buffer, "-1.776627111"));
    herd_protocol_skew (&receipt, s_field ("1621464828.2233728885"), buffer, sizeof buffer);
    assert (streq (buffer, "-0.000000000") || streq (buffer, "+0.000000000"));
    herd_protocol_skew (&receipt, s_field ("999999999999999999.5"), buffer, sizeof buffer);
    assert (buffer [0] == '-');
    if (verbose)
        printf ("    skew: %s\n", buffer);

    //  An AT line built from an IAMAT carries the same fields a parse finds
    command = s_parse ("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503");
    char built [200];
    herd_at_t made, parsed;
    int size = herd_protocol_format_at (built, sizeof built, "Clark", &receipt, &command, &made);
    assert (size > 0 && streq (built, "AT Clark +0.263874386 kiwi.cs.ucla.edu "
                                      "+34.068930-118.445127 1621464827.959498503"));
    assert (herd_protocol_parse_at (built, size, &parsed) == 0);
    herd_field_t *made_fields [] = { &made.line, &made.server, &made.skew, &made.client,
                                     &made.coordinates, &made.time };
    herd_field_t *parsed_fields [] = { &parsed.line, &parsed.server, &parsed.skew, &parsed.client,
                                       &parsed.coordinates, &parsed.time };
    for (size_t index = 0; index < 6; index++)
        assert (made_fields [index]->start == parsed_fields [index]->start
            &&  made_fields [index]->size == parsed_fields [index]->size);
    double made_latitude, made_longitude, parsed_latitude, parsed_longitude;
    herd_protocol_at_position (&made, &made_latitude, &made_longitude);
    herd_protocol_at_position (&parsed, &parsed_latitude, &parsed_longitude);
    assert (made_latitude == parsed_latitude && made_longitude == parsed_longitude);
    assert (made_latitude == 34.068930 && made_longitude == -118.445127);
    herd_at_t peeked;
    assert (herd_protocol_peek_at (made.line.start, made.line.size, &peeked) == 0);
    assert (peeked.client.start == made.client.start && peeked.time.size == made.time.size);
    assert (herd_protocol_check_peeked (&peeked) == 0 && !memcmp (&peeked, &parsed, sizeof parsed));
    assert (herd_protocol_peek_at ("AT A +0.1 kiwi +1+1", 19, &peeked) == -1);
    assert (herd_protocol_peek_at ("AT A +0.1 kiwi +1+1 x5", 22, &peeked) == -1);
    assert (herd_protocol_peek_at ("XY A +0.1 kiwi +1+1 5", 21, &peeked) == -1);
    //  Peeked but not an AT line: the checks the peek left undone
    assert (herd_protocol_peek_at ("AT A +0.1 kiwi +1+x 5", 21, &peeked) == 0);
    assert (herd_protocol_check_peeked (&peeked) == -1);
    assert (herd_protocol_peek_at ("AT A 0.1 kiwi +1+1 5", 20, &peeked) == 0);
    assert (herd_protocol_check_peeked (&peeked) == -1);
    assert (herd_protocol_format_at (built, 20, "Clark", &receipt, &command, &made) == -1);

    //  Random lines built from the grammar's own pieces never crash the
    //  parser and never yield out-of-range values (make fuzz goes further)
    const char *pieces [] = { "IAMAT", "WHATSAT", "AT", " ", "\t", "+", "-", ".", "0", "9",
                              "90", "180", "kiwi", "\xff", "\0", "1e5", "50", "20", "\r" };
    srand (42);
    for (int round = 0; round < 200000; round++) {
        char line [64];
        size_t size = 0;
        while (size < 48 && rand () % 12) {
            const char *piece = pieces [rand () % (sizeof pieces / sizeof pieces [0])];
            size_t piece_size = *piece? strlen (piece): 1;
            memcpy (line + size, piece, piece_size);
            size += piece_size;
        }
        herd_protocol_parse (line, size, &command);
        if (command.kind == HERD_LINE_IAMAT)
            assert (fabs (command.latitude) <= 90 && fabs (command.longitude) <= 180);
        if (command.kind == HERD_LINE_WHATSAT)
            assert (command.radius_km > 0 && command.radius_km <= 50);
        herd_protocol_parse_at (line, size, &at);
    }
    printf ("OK\n");
}
