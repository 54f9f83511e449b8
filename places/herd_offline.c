//  places/herd_offline.c: offline nearby search over open data.
//
//  The index is a uniform grid of 0.25 x 0.25 degree cells, places sorted
//  by cell (a counting sort at load, a few ms). A query visits the cells of
//  its bounding box: rows by latitude; columns by the spherical cap's true
//  longitude span, asin (sin r / cos lat), which widens toward the poles,
//  wraps across the 180th meridian by taking columns modulo the row, and
//  becomes the whole row when the cap holds a pole. So a query costs the
//  cells it covers plus the places in them, not the 263,000 places. Why a
//  grid rather than a k-d tree or S2 cells: radii are at most 50 km, so the
//  box is a handful of cells almost everywhere; cell lookup is arithmetic;
//  the index is two flat arrays, shared read-only by every worker thread.
//
//  Distances are great-circle (haversine on a 6,371,008.8 m sphere). The
//  scan and the index compare the same haversine term of the same stored
//  values, so both give exactly the same answer.

#include "places/herd_places_layer.h"
#include <sys/mman.h>
#include <sys/stat.h>

#define S_MAGIC         "HERDPLC1"
#define S_CELL_DEGREES  0.25
#define S_ROWS          720             //  180 / S_CELL_DEGREES
#define S_COLUMNS       1440            //  360 / S_CELL_DEGREES
#define S_EARTH_RADIUS  6371008.8       //  Metres, mean radius
#define S_MARGIN        1e-7            //  Degrees added to boxes: rounding

//  On disk, little-endian (tools/places-data.py writes it)
typedef struct {
    char magic [8];
    uint32_t count;
    uint32_t strings_size;
    uint32_t checksum;                  //  FNV-1a 32 of records, then strings
    uint32_t reserved;
} s_header_t;

typedef struct {
    int32_t latitude;                   //  Micro-degrees
    int32_t longitude;
    uint32_t population;                //  0 if none
    uint32_t name;                      //  Offsets into the strings
    uint32_t vicinity;
    uint32_t place_id;
} s_record_t;

//  A place as the index holds it, in cell order
typedef struct {
    double latitude;                    //  Radians
    double longitude;
    double cos_latitude;
    uint32_t record;                    //  Index in the file's records
} s_point_t;

//  A candidate answer
typedef struct {
    double term;                        //  Haversine term: orders by distance
    uint32_t record;
} s_hit_t;

struct _herd_offline_t {
    void *map;                          //  The mapped file (owned)
    size_t map_size;
    const s_record_t *records;          //  In map
    const char *strings;                //  In map
    size_t count;
    s_point_t *points;                  //  count points, sorted by cell (owned)
    uint32_t *cell_start;               //  S_ROWS * S_COLUMNS + 1 offsets into points (owned)
};

static size_t
s_cell (double latitude, double longitude)
{
    int row = (int) floor ((latitude + 90) / S_CELL_DEGREES);
    int column = (int) floor ((longitude + 180) / S_CELL_DEGREES);
    row = row < 0? 0: row >= S_ROWS? S_ROWS - 1: row;
    column = ((column % S_COLUMNS) + S_COLUMNS) % S_COLUMNS;
    return (size_t) row * S_COLUMNS + column;
}

//  Checks everything the search will trust. NULL, or the reason.
static char *
s_check (herd_offline_t *self)
{
    if (self->map_size < sizeof (s_header_t))
        return zsys_sprintf ("truncated: %zu bytes, not even a header", self->map_size);
    const s_header_t *header = (const s_header_t *) self->map;
    if (memcmp (header->magic, S_MAGIC, 8) || header->reserved)
        return strdup ("not a herd places file (bad magic); rebuild it with make data");
    size_t expected = sizeof (s_header_t) + (size_t) header->count * sizeof (s_record_t)
                    + header->strings_size;
    if (self->map_size != expected)
        return zsys_sprintf ("truncated or padded: %zu bytes, header says %zu", self->map_size, expected);
    self->count = header->count;
    self->records = (const s_record_t *) ((const char *) self->map + sizeof (s_header_t));
    self->strings = (const char *) (self->records + self->count);
    uint32_t checksum = herd_fnv32 (self->records, self->count * sizeof (s_record_t), HERD_FNV32_SEED);
    checksum = herd_fnv32 (self->strings, header->strings_size, checksum);
    if (checksum != header->checksum)
        return strdup ("checksum mismatch: the file is corrupt; rebuild it with make data");
    if (header->strings_size == 0 || self->strings [header->strings_size - 1])
        return strdup ("string table is not terminated");
    for (size_t index = 0; index < self->count; index++) {
        const s_record_t *record = &self->records [index];
        if (record->latitude < -90000000 || record->latitude > 90000000
        ||  record->longitude < -180000000 || record->longitude > 180000000
        ||  record->name >= header->strings_size || record->vicinity >= header->strings_size
        ||  record->place_id >= header->strings_size || !self->strings [record->name])
            return zsys_sprintf ("record %zu is out of range", index);
    }
    return NULL;
}

//  Sorts the places by cell: count per cell, prefix sums, place
static void
s_index (herd_offline_t *self)
{
    size_t cells = (size_t) S_ROWS * S_COLUMNS;
    self->cell_start = (uint32_t *) calloc (cells + 1, sizeof (uint32_t));
    self->points = (s_point_t *) malloc (self->count * sizeof (s_point_t) + 1);
    uint32_t *cell_of = (uint32_t *) malloc (self->count * sizeof (uint32_t) + 1);
    assert (self->cell_start && self->points && cell_of);
    for (size_t index = 0; index < self->count; index++) {
        double latitude, longitude;
        herd_offline_position (self, index, &latitude, &longitude);
        cell_of [index] = (uint32_t) s_cell (latitude, longitude);
        self->cell_start [cell_of [index] + 1]++;
    }
    for (size_t cell = 0; cell < cells; cell++)
        self->cell_start [cell + 1] += self->cell_start [cell];
    uint32_t *next = (uint32_t *) malloc (cells * sizeof (uint32_t));
    assert (next);
    memcpy (next, self->cell_start, cells * sizeof (uint32_t));
    for (size_t index = 0; index < self->count; index++) {
        double latitude, longitude;
        herd_offline_position (self, index, &latitude, &longitude);
        s_point_t *point = &self->points [next [cell_of [index]]++];
        point->latitude = latitude * M_PI / 180;
        point->longitude = longitude * M_PI / 180;
        point->cos_latitude = cos (point->latitude);
        point->record = (uint32_t) index;
    }
    freen (next);
    freen (cell_of);
}

herd_offline_t *
herd_offline_load (const char *path, char **error_p)
{
    assert (path && error_p);
    *error_p = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat status;
    if (fd == -1 || fstat (fd, &status) == -1) {
        *error_p = zsys_sprintf ("places file %s (places/offline/data): %s%s", path, strerror (errno),
                                 errno == ENOENT? " (build it with make data)"
                                 : errno == EACCES? " (make it readable by the user herd runs as)": "");
        if (fd != -1)
            close (fd);
        return NULL;
    }
    herd_offline_t *self = (herd_offline_t *) zmalloc (sizeof (herd_offline_t));
    self->map_size = (size_t) status.st_size;
    //  Read-only and shared: five servers on one host share the pages
    self->map = self->map_size? mmap (NULL, self->map_size, PROT_READ, MAP_SHARED, fd, 0): NULL;
    close (fd);
    if (self->map == MAP_FAILED) {
        self->map = NULL;
        *error_p = zsys_sprintf ("places file %s: cannot map: %s", path, strerror (errno));
        herd_offline_destroy (&self);
        return NULL;
    }
    char *reason = s_check (self);
    if (reason) {
        *error_p = zsys_sprintf ("places file %s: %s", path, reason);
        freen (reason);
        herd_offline_destroy (&self);
        return NULL;
    }
    s_index (self);
    return self;
}

void
herd_offline_destroy (herd_offline_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_offline_t *self = *self_p;
        if (self->map)
            munmap (self->map, self->map_size);
        freen (self->points);
        freen (self->cell_start);
        freen (self);
        *self_p = NULL;
    }
}

size_t
herd_offline_size (herd_offline_t *self)
{
    assert (self);
    return self->count;
}

void
herd_offline_position (herd_offline_t *self, uint32_t index, double *latitude, double *longitude)
{
    assert (self && index < self->count);
    *latitude = self->records [index].latitude / 1e6;
    *longitude = self->records [index].longitude / 1e6;
}

double
herd_offline_distance (double latitude1, double longitude1, double latitude2, double longitude2)
{
    double sin_latitude = sin ((latitude2 - latitude1) * M_PI / 360);
    double sin_longitude = sin ((longitude2 - longitude1) * M_PI / 360);
    double term = sin_latitude * sin_latitude + cos (latitude1 * M_PI / 180)
                * cos (latitude2 * M_PI / 180) * sin_longitude * sin_longitude;
    return 2 * S_EARTH_RADIUS * asin (sqrt (term < 1? term: 1));
}

//  The state of one query, shared by the index and the scan
typedef struct {
    double latitude;                    //  Radians
    double longitude;
    double cos_latitude;
    double max_term;                    //  Haversine term of the radius
    s_hit_t *hits;                      //  Sorted by (term, record)
    size_t count;
    size_t limit;
} s_query_t;

static inline void
s_consider (s_query_t *query, const s_point_t *point)
{
    double sin_latitude = sin ((point->latitude - query->latitude) / 2);
    double sin_longitude = sin ((point->longitude - query->longitude) / 2);
    double term = sin_latitude * sin_latitude
                + query->cos_latitude * point->cos_latitude * sin_longitude * sin_longitude;
    if (term > query->max_term)
        return;
    //  Insert in order, keeping at most limit: nearest first, ties by record
    size_t position = query->count < query->limit? query->count: query->limit - 1;
    s_hit_t *last = &query->hits [position];
    if (query->count == query->limit
    && (term > last->term || (term == last->term && point->record > last->record)))
        return;
    while (position > 0
       && (query->hits [position - 1].term > term
       || (query->hits [position - 1].term == term && query->hits [position - 1].record > point->record))) {
        query->hits [position] = query->hits [position - 1];
        position--;
    }
    query->hits [position].term = term;
    query->hits [position].record = point->record;
    if (query->count < query->limit)
        query->count++;
}

static void
s_query_init (s_query_t *query, double latitude, double longitude, double radius_m, size_t limit)
{
    query->latitude = latitude * M_PI / 180;
    query->longitude = longitude * M_PI / 180;
    query->cos_latitude = cos (query->latitude);
    double half_angle = radius_m / S_EARTH_RADIUS / 2;
    query->max_term = half_angle < M_PI / 2? sin (half_angle) * sin (half_angle): 1;
    query->hits = (s_hit_t *) malloc ((limit? limit: 1) * sizeof (s_hit_t));
    assert (query->hits);
    query->count = 0;
    query->limit = limit;
}

static size_t
s_query_finish (s_query_t *query, uint32_t *indexes)
{
    for (size_t index = 0; index < query->count; index++)
        indexes [index] = query->hits [index].record;
    freen (query->hits);
    return query->count;
}

size_t
herd_offline_nearest (herd_offline_t *self, double latitude, double longitude,
                      double radius_m, size_t limit, uint32_t *indexes)
{
    assert (self);
    s_query_t query;
    s_query_init (&query, latitude, longitude, radius_m, limit);
    if (limit == 0)
        return s_query_finish (&query, indexes);
    double angle = radius_m / S_EARTH_RADIUS;                  //  Radians
    double reach = angle * 180 / M_PI + S_MARGIN;              //  Degrees of latitude
    int first_row = (int) floor ((latitude - reach + 90) / S_CELL_DEGREES);
    int last_row = (int) floor ((latitude + reach + 90) / S_CELL_DEGREES);
    first_row = first_row < 0? 0: first_row;
    last_row = last_row >= S_ROWS? S_ROWS - 1: last_row;
    int first_column = 0, columns = S_COLUMNS;
    bool holds_pole = latitude + reach >= 90 || latitude - reach <= -90;
    double sine = holds_pole? 2: sin (angle) / cos (latitude * M_PI / 180);
    if (sine < 1) {
        double span = asin (sine) * 180 / M_PI + S_MARGIN;   //  Degrees of longitude
        first_column = (int) floor ((longitude - span + 180) / S_CELL_DEGREES);
        int last_column = (int) floor ((longitude + span + 180) / S_CELL_DEGREES);
        columns = last_column - first_column + 1;
        if (columns > S_COLUMNS)
            columns = S_COLUMNS;
    }
    for (int row = first_row; row <= last_row; row++)
        for (int step = 0; step < columns; step++) {
            int column = (((first_column + step) % S_COLUMNS) + S_COLUMNS) % S_COLUMNS;
            size_t cell = (size_t) row * S_COLUMNS + column;
            for (uint32_t point = self->cell_start [cell]; point < self->cell_start [cell + 1]; point++)
                s_consider (&query, &self->points [point]);
        }
    return s_query_finish (&query, indexes);
}

size_t
herd_offline_nearest_scan (herd_offline_t *self, double latitude, double longitude,
                           double radius_m, size_t limit, uint32_t *indexes)
{
    assert (self);
    s_query_t query;
    s_query_init (&query, latitude, longitude, radius_m, limit);
    for (size_t point = 0; point < self->count && limit; point++)
        s_consider (&query, &self->points [point]);
    return s_query_finish (&query, indexes);
}

json_t *
herd_offline_search (herd_offline_t *self, const herd_query_t *query)
{
    assert (self);
    uint32_t indexes [HERD_RESULTS_MAX];
    size_t count = herd_offline_nearest (self, query->latitude, query->longitude,
                                         query->radius_m, HERD_RESULTS_MAX, indexes);
    json_t *results = json_array ();
    for (size_t index = 0; index < count; index++) {
        const s_record_t *record = &self->records [indexes [index]];
        const char *place_id = self->strings + record->place_id;
        bool airport = !strncmp (place_id, "airport:", 8);
        json_t *result = json_pack ("{s:s, s:s, s:{s:{s:f, s:f}}, s:o, s:s}",
            "name", self->strings + record->name,
            "place_id", place_id,
            "geometry", "location", "lat", record->latitude / 1e6, "lng", record->longitude / 1e6,
            "types", airport? json_pack ("[s]", "airport"): json_pack ("[s,s]", "locality", "political"),
            "vicinity", self->strings + record->vicinity);
        if (!result)                    //  Text that is not UTF-8: skip it
            continue;
        if (record->population)
            json_object_set_new (result, "population", json_integer (record->population));
        json_array_append_new (results, result);
    }
    return herd_nearby_response (results);
}

//  --------------------------------------------------------------------------
//  The answer as text, written straight into the reply: the bytes
//  herd_nearby_text (herd_offline_search (...)) gives, without building
//  and dumping a JSON tree and without printf for the coordinates (the
//  selftest holds the two to the same bytes on every query it makes)

//  True if text is UTF-8 as jansson takes it: no overlong form, no
//  surrogate, nothing past U+10FFFF
static bool
s_utf8_valid (const char *text)
{
    const unsigned char *byte = (const unsigned char *) text;
    while (*byte) {
        if (*byte < 0x80) {
            byte++;
            continue;
        }
        size_t length = *byte >= 0xC2 && *byte <= 0xDF? 2: *byte >= 0xE0 && *byte <= 0xEF? 3:
                        *byte >= 0xF0 && *byte <= 0xF4? 4: 0;
        if (!length)
            return false;
        uint32_t value = *byte & (0x7F >> length);
        for (size_t index = 1; index < length; index++) {
            if ((byte [index] & 0xC0) != 0x80)
                return false;
            value = (value << 6) | (byte [index] & 0x3F);
        }
        if ((length == 3 && value < 0x800) || (length == 4 && value < 0x10000)
        ||  (value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF)
            return false;
        byte += length;
    }
    return true;
}

static inline void
s_put (zchunk_t *out, const char *text, size_t size)
{
    zchunk_extend (out, text, size);
}
#define s_put_literal(out, text) s_put ((out), (text), sizeof (text) - 1)

//  A JSON string as jansson dumps it: quotes, backslashes and control
//  characters escaped, the rest (UTF-8 included) as it is
static void
s_put_string (zchunk_t *out, const char *text)
{
    s_put_literal (out, "\"");
    const char *run = text;
    for (const char *next = text; *next; next++) {
        unsigned char byte = (unsigned char) *next;
        if (byte >= 0x20 && byte != '"' && byte != '\\')
            continue;
        s_put (out, run, (size_t) (next - run));
        char escape [8];
        const char *short_form = byte == '"'? "\\\"": byte == '\\'? "\\\\": byte == '\b'? "\\b":
                                 byte == '\f'? "\\f": byte == '\n'? "\\n": byte == '\r'? "\\r":
                                 byte == '\t'? "\\t": NULL;
        if (short_form)
            s_put (out, short_form, 2);
        else {
            snprintf (escape, sizeof escape, "\\u%04X", byte);
            s_put (out, escape, 6);
        }
        run = next + 1;
    }
    s_put (out, run, strlen (run));
    s_put_literal (out, "\"");
}

//  Micro-degrees as jansson dumps the real micro / 1e6 with 10 digits of
//  precision: a micro-degree value has at most 9, so that is its exact
//  decimal, trailing zeros dropped, ".0" if nothing is left after the
//  point. Below 0.0001 degrees %g turns to an exponent: jansson prints those.
static void
s_put_degrees (zchunk_t *out, int32_t micro)
{
    char text [32];
    if (micro != 0 && micro > -100 && micro < 100) {
        json_t *real = json_real (micro / 1e6);
        size_t size = json_dumpb (real, text, sizeof text, JSON_ENCODE_ANY | JSON_REAL_PRECISION (10));
        json_decref (real);
        s_put (out, text, size);
        return;
    }
    uint32_t magnitude = micro < 0? (uint32_t) -(int64_t) micro: (uint32_t) micro;
    size_t size = 0;
    if (micro < 0)
        text [size++] = '-';
    size += herd_protocol_format_u64 (text + size, magnitude / 1000000);
    text [size++] = '.';
    //  Six decimals, trailing zeros dropped, one kept at least
    uint32_t fraction = magnitude % 1000000;
    int digits = 6;
    while (digits > 1 && fraction % 10 == 0) {
        fraction /= 10;
        digits--;
    }
    for (int digit = digits - 1; digit >= 0; digit--, fraction /= 10)
        text [size + (size_t) digit] = (char) ('0' + fraction % 10);
    s_put (out, text, size + (size_t) digits);
}

size_t
herd_offline_answer (herd_offline_t *self, const herd_query_t *query, zchunk_t *out)
{
    assert (self && query && out);
    zchunk_set (out, NULL, 0);
    uint32_t indexes [HERD_RESULTS_MAX];
    size_t count = herd_offline_nearest (self, query->latitude, query->longitude,
                                         query->radius_m, HERD_RESULTS_MAX, indexes);
    s_put_literal (out, "{\n   \"html_attributions\": [],\n   \"results\": [");
    size_t written = 0, valid = 0;
    for (size_t index = 0; index < count; index++) {
        const s_record_t *record = &self->records [indexes [index]];
        const char *name = self->strings + record->name;
        const char *place_id = self->strings + record->place_id;
        const char *vicinity = self->strings + record->vicinity;
        //  jansson refuses text that is not UTF-8: the place is left out
        if (!s_utf8_valid (name) || !s_utf8_valid (place_id) || !s_utf8_valid (vicinity))
            continue;
        valid++;                        //  The status counts what the cut drops
        if (written == query->max_results)
            continue;
        if (written)
            s_put_literal (out, ",");
        s_put_literal (out, "\n      {\n         \"name\": ");
        s_put_string (out, name);
        s_put_literal (out, ",\n         \"place_id\": ");
        s_put_string (out, place_id);
        s_put_literal (out, ",\n         \"geometry\": {\n            \"location\": {\n               \"lat\": ");
        s_put_degrees (out, record->latitude);
        s_put_literal (out, ",\n               \"lng\": ");
        s_put_degrees (out, record->longitude);
        if (!strncmp (place_id, "airport:", 8))
            s_put_literal (out, "\n            }\n         },\n         \"types\": [\n            \"airport\"\n"
                                "         ],\n         \"vicinity\": ");
        else
            s_put_literal (out, "\n            }\n         },\n         \"types\": [\n            \"locality\",\n"
                                "            \"political\"\n         ],\n         \"vicinity\": ");
        s_put_string (out, vicinity);
        if (record->population) {
            char number [24];
            s_put_literal (out, ",\n         \"population\": ");
            s_put (out, number, herd_protocol_format_u64 (number, record->population));
        }
        s_put_literal (out, "\n      }");
        written++;
    }
    if (written)
        s_put_literal (out, "\n   ],\n");
    else
        s_put_literal (out, "],\n");
    if (valid)
        s_put_literal (out, "   \"status\": \"OK\"\n}");
    else
        s_put_literal (out, "   \"status\": \"ZERO_RESULTS\"\n}");
    return zchunk_size (out);
}

//  --------------------------------------------------------------------------
//  Selftest: a synthetic file with places near the poles and the 180th
//  meridian; index against scan on 1,000 random queries; bad files; and
//  the real data when it has been built

static void
s_write_file (const char *path, size_t count, unsigned int seed, bool corrupt)
{
    s_record_t *records = (s_record_t *) calloc (count, sizeof (s_record_t));
    //  Names that need escapes, and one that is not UTF-8 (left out)
    char strings [] = "Place\0Vicinity\0geonames:1\0airport:XXXX\0Qu\"o\\te\t\x01\xc3\xa9\x7f\0Bad\xff";
    srand (seed);
    for (size_t index = 0; index < count; index++) {
        //  A third anywhere, a third near the poles, a third near 180
        double latitude, longitude;
        if (index % 3 == 0) {
            latitude = (rand () / (double) RAND_MAX) * 180 - 90;
            longitude = (rand () / (double) RAND_MAX) * 360 - 180;
        }
        else
        if (index % 3 == 1) {
            latitude = (index % 2? 1: -1) * (89 + rand () / (double) RAND_MAX);
            longitude = (rand () / (double) RAND_MAX) * 360 - 180;
        }
        else {
            latitude = (rand () / (double) RAND_MAX) * 10 - 20;
            longitude = (index % 2? 1: -1) * (179.5 + rand () / (double) RAND_MAX / 2);
        }
        records [index].latitude = (int32_t) lround (latitude * 1e6);
        records [index].longitude = (int32_t) lround (longitude * 1e6);
        records [index].name = index % 5 == 3? 39: index % 7 == 4? 52: 0;
        records [index].vicinity = 6;
        records [index].place_id = index % 2? 15: 26;
        records [index].population = (uint32_t) index;
    }
    //  Near 0,0: coordinates that jansson prints with an exponent
    records [0].latitude = 50;
    records [0].longitude = -7;
    records [3].latitude = -100;
    records [3].longitude = 0;
    s_header_t header = { S_MAGIC, (uint32_t) count, sizeof strings, 0, 0 };
    header.checksum = herd_fnv32 (records, count * sizeof (s_record_t), HERD_FNV32_SEED);
    header.checksum = herd_fnv32 (strings, sizeof strings, header.checksum);
    if (corrupt)
        records [count / 2].population ^= 1;
    FILE *file = fopen (path, "wb");
    assert (file);
    fwrite (&header, sizeof header, 1, file);
    fwrite (records, sizeof (s_record_t), count, file);
    fwrite (strings, sizeof strings, 1, file);
    fclose (file);
    freen (records);
}

static void
s_compare_index_and_scan (herd_offline_t *offline, bool on_places, int queries)
{
    uint32_t from_index [2000], from_scan [2000];
    for (int query = 0; query < queries; query++) {
        double latitude, longitude;
        if (on_places)
            herd_offline_position (offline, (uint32_t) rand () % herd_offline_size (offline),
                                   &latitude, &longitude);
        else {
            latitude = (rand () / (double) RAND_MAX) * 180 - 90;
            longitude = (rand () / (double) RAND_MAX) * 360 - 180;
        }
        if (query % 4 == 1)
            longitude = (query % 8 == 1? 179.9: -179.9) + (rand () % 100) / 1000.0;
        if (query % 4 == 2)
            latitude = (query % 8 == 2? 89.8: -89.8) + (rand () % 100) / 500.0;
        double radius = 1 + (rand () / (double) RAND_MAX) * 49999;
        size_t count = herd_offline_nearest (offline, latitude, longitude, radius, 2000, from_index);
        size_t expected = herd_offline_nearest_scan (offline, latitude, longitude, radius, 2000, from_scan);
        if (count != expected || memcmp (from_index, from_scan, count * sizeof (uint32_t))) {
            printf ("index and scan disagree at %f,%f radius %f: %zu vs %zu\n",
                    latitude, longitude, radius, count, expected);
            assert (false);
        }
        for (size_t index = 0; index < count; index++) {
            double place_latitude, place_longitude;
            herd_offline_position (offline, from_index [index], &place_latitude, &place_longitude);
            assert (herd_offline_distance (latitude, longitude, place_latitude, place_longitude)
                    <= radius + 1e-6);
        }
    }
}

//  The text answer against jansson's dump of the JSON answer, byte for byte
static void
s_compare_answers_at (herd_offline_t *offline, const herd_query_t *query)
{
    zchunk_t *text = zchunk_new (NULL, 0);
    json_t *response = herd_offline_search (offline, query);
    char *expected = herd_nearby_text (response, query->max_results);
    size_t size = herd_offline_answer (offline, query, text);
    if (size != strlen (expected) || memcmp (zchunk_data (text), expected, size)) {
        fprintf (stderr, "text and JSON answers differ at %f,%f radius %f:\n%.*s\n---\n%s\n",
                query->latitude, query->longitude, query->radius_m, (int) size, zchunk_data (text), expected);
        assert (false);
    }
    freen (expected);
    json_decref (response);
    zchunk_destroy (&text);
}

static void
s_compare_answers (herd_offline_t *offline, bool on_places, int queries)
{
    for (int query_nbr = 0; query_nbr < queries; query_nbr++) {
        herd_query_t query = { 0, 0, 1 + (rand () / (double) RAND_MAX) * 49999,
                               1 + (uint32_t) rand () % HERD_RESULTS_MAX };
        if (on_places)
            herd_offline_position (offline, (uint32_t) rand () % herd_offline_size (offline),
                                   &query.latitude, &query.longitude);
        else {
            query.latitude = (rand () / (double) RAND_MAX) * 180 - 90;
            query.longitude = (rand () / (double) RAND_MAX) * 360 - 180;
        }
        s_compare_answers_at (offline, &query);
    }
}

void
herd_offline_test (bool verbose)
{
    printf (" * herd_offline: ");
    if (verbose)
        printf ("\n");
    char *path = zsys_sprintf ("/tmp/herd-offline-test-%d.bin", getpid ());
    s_write_file (path, 60000, 7, false);
    char *error = NULL;
    herd_offline_t *offline = herd_offline_load (path, &error);
    assert (offline);
    assert (herd_offline_size (offline) == 60000);
    srand (11);
    s_compare_index_and_scan (offline, false, 1000);
    s_compare_index_and_scan (offline, true, 1000);
    //  A search answers the Nearby Search shape, nearest first
    double latitude, longitude;
    herd_offline_position (offline, 2, &latitude, &longitude);
    herd_query_t query = { latitude, longitude, 50000, 20 };
    json_t *response = herd_offline_search (offline, &query);
    assert (streq (herd_nearby_status (response), "OK"));
    json_t *first = json_array_get (json_object_get (response, "results"), 0);
    assert (streq (json_string_value (json_object_get (first, "name")), "Place"));
    json_decref (response);
    s_compare_answers (offline, false, 1000);
    s_compare_answers (offline, true, 1000);
    query.latitude = query.longitude = 0;
    s_compare_answers_at (offline, &query);
    herd_offline_destroy (&offline);
    herd_offline_destroy (&offline);

    //  Bad files are refused with a reason, never a crash
    s_write_file (path, 100, 7, true);
    assert (!herd_offline_load (path, &error));
    assert (strstr (error, "checksum mismatch"));
    freen (error);
    s_write_file (path, 100, 7, false);
    assert (truncate (path, 1000) == 0);
    assert (!herd_offline_load (path, &error));
    assert (strstr (error, "truncated"));
    freen (error);
    FILE *file = fopen (path, "wb");
    fputs ("this is not a places file, not at all", file);
    fclose (file);
    assert (!herd_offline_load (path, &error));
    assert (strstr (error, "bad magic"));
    freen (error);
    unlink (path);
    assert (!herd_offline_load (path, &error));
    assert (strstr (error, "No such file"));
    freen (error);
    freen (path);

    //  The real data, when built: the same agreement on real places
    const char *real = getenv ("HERD_PLACES_DATA");
    offline = real? herd_offline_load (real, &error): NULL;
    if (real && !offline) {
        printf ("%s\n", error);
        assert (false);
    }
    if (offline) {
        if (verbose)
            printf ("    real data: %zu places\n", herd_offline_size (offline));
        s_compare_index_and_scan (offline, true, 1000);
        //  From UCLA, 50 km holds Los Angeles, Santa Monica and LAX
        uint32_t found [2000];
        size_t count = herd_offline_nearest (offline, 34.068930, -118.445127, 50000, 2000, found);
        int wanted = 0;
        for (size_t index = 0; index < count; index++) {
            const char *place_id = offline->strings + offline->records [found [index]].place_id;
            wanted += streq (place_id, "geonames:5368361") || streq (place_id, "geonames:5393212")
                   || streq (place_id, "airport:KLAX");
        }
        assert (wanted == 3);
        s_compare_answers (offline, true, 5000);
        herd_offline_destroy (&offline);
    }
    printf ("OK\n");
}
