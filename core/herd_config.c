//  core/herd_config.c: load and check the herd's ZPL config file.

#include "core/herd_core_layer.h"
#include <sys/mman.h>             //  memfd_create

//  A config is a few kilobytes; anything past this is the wrong file
#define S_FILE_MAX (1024 * 1024)

//  One numeric setting, its default and its allowed range
typedef struct {
    const char *path;
    long default_value;
    long minimum;
    long maximum;
} s_number_t;

static const s_number_t s_numbers [] = {
    { "herd/max_line",       HERD_MAX_LINE_DEFAULT,    HERD_MAX_LINE_MIN,    HERD_MAX_LINE_MAX },
    { "herd/max_pending",    HERD_MAX_PENDING_DEFAULT, HERD_MAX_PENDING_MIN, HERD_MAX_PENDING_MAX },
    { "herd/max_clients",    HERD_MAX_CLIENTS_DEFAULT, 1,                    HERD_MAX_CLIENTS_MAX },
    { "herd/max_stored",     HERD_MAX_STORED_DEFAULT,  1,                    HERD_MAX_STORED_MAX },
    { "herd/idle_timeout",   HERD_IDLE_TIMEOUT_DEFAULT, 0,                   HERD_IDLE_TIMEOUT_MAX },
    { "herd/first_line_timeout", HERD_FIRST_LINE_TIMEOUT_DEFAULT, 0,          HERD_IDLE_TIMEOUT_MAX },
    { "herd/max_per_address", HERD_MAX_PER_ADDRESS_DEFAULT, 0,               HERD_MAX_CLIENTS_MAX },
    { "herd/max_output_total", HERD_MAX_OUTPUT_TOTAL_DEFAULT, HERD_MAX_PENDING_MIN, HERD_MAX_OUTPUT_TOTAL_MAX },
    { "herd/log_traffic",    1,                        0,                    1 },
    { "herd/journal",        1,                        0,                    1 },
    { "herd/journal_rewrite_min", HERD_JOURNAL_REWRITE_MIN_DEFAULT, 0,        HERD_JOURNAL_REWRITE_MIN_MAX },
    { "herd/max_future",     HERD_MAX_FUTURE_DEFAULT,  0,                    HERD_MAX_FUTURE_MAX },
    { "herd/client_ttl",     0,                        0,                    HERD_MAX_FUTURE_MAX },
    { "herd/tombstone_ttl",  HERD_TOMBSTONE_TTL_DEFAULT, 1,                  HERD_MAX_FUTURE_MAX },
    { "herd/forget_rewrite", HERD_FORGET_REWRITE_DEFAULT, 1,                 86400 },
    { "herd/log_retention",  HERD_LOG_RETENTION_DEFAULT, 0,                  36500 },
    { "bus/hwm",             HERD_BUS_HWM_DEFAULT,     100,                  10000000 },
    { "bus/heartbeat",       1000,                     20,                   60000 },
    { "bus/feed_hwm",        HERD_FEED_HWM_DEFAULT,    100,                  10000000 },
    { "bus/feed_max_subscriptions", HERD_FEED_MAX_SUBSCRIPTIONS_DEFAULT, 1,   HERD_FEED_MAX_SUBSCRIPTIONS_MAX },
    { "bus/feed_max_monitors", HERD_FEED_MAX_MONITORS_DEFAULT, 1,            HERD_FEED_MAX_MONITORS_MAX },
    { "bus/feed_max_bytes",  HERD_FEED_MAX_BYTES_DEFAULT, HERD_FEED_MAX_BYTES_MIN, HERD_FEED_MAX_BYTES_MAX },
    { "bus/feed_max_stall",  HERD_FEED_MAX_STALL_DEFAULT, 1,                  HERD_FEED_MAX_STALL_MAX },
    { "places/workers",      HERD_PLACES_WORKERS_DEFAULT, 1,                 HERD_PLACES_WORKERS_MAX },
    { "places/queue",        HERD_PLACES_QUEUE_DEFAULT, 1,                   HERD_PLACES_QUEUE_MAX },
    { "places/timeout",      HERD_PLACES_TIMEOUT_DEFAULT, 100,               HERD_PLACES_TIMEOUT_MAX },
    { "places/cache/ttl",    HERD_PLACES_TTL_DEFAULT,  0,                    HERD_PLACES_TTL_MAX },
    { "places/cache/bytes",  HERD_PLACES_CACHE_DEFAULT, HERD_PLACES_CACHE_MIN, HERD_PLACES_CACHE_MAX },
};
#define S_NUMBERS (sizeof (s_numbers) / sizeof (s_numbers [0]))

//  One string setting, its default and, if not free text, its choices
typedef struct {
    const char *path;
    const char *default_value;
    const char *choices;            //  Space-separated, or NULL for any
} s_string_t;

static const s_string_t s_strings [] = {
    { "herd/log_dir",           "log",                  NULL },
    { "herd/log_format",        "text",                 "text json" },
    { "herd/log_level",         "info",                 "debug info notice warning error" },
    { "herd/data_dir",          "state",                NULL },
    { "herd/fsync",             "everysec",             "always everysec no" },
    { "herd/security",          "on",                   "on off" },
    { "herd/keys",              "state/keys",           NULL },
    { "places/provider",        "auto",                 "auto google offline none" },
    { "places/offline/data",    "data/places.bin",      NULL },
    { "places/google/api",      "new",                  "new legacy" },
    { "places/google/url",      "",                     NULL },
    { "places/google/key_env",  "HERD_GOOGLE_API_KEY",  NULL },
    { "places/google/fields",   HERD_GOOGLE_FIELDS_DEFAULT, NULL },
    { "tls/ca",                 "",                     NULL },
    { "tls/cert",               "",                     NULL },
    { "tls/key",                "",                     NULL },
    { "tls/crl",                "",                     NULL },
    { "tls/client_certs",       "required",             "required optional" },
    { "tls/min_version",        "1.3",                  "1.3 1.2" },
};
#define S_STRINGS (sizeof (s_strings) / sizeof (s_strings [0]))

//  Names allowed under each section; anything else is a typo we report
static const char *s_sections = "herd bus places tls servers";
static const char *s_server_keys = "client client_tls bus bus_bind sync sync_bind feed feed_bind admin http neighbours";

//  One server of the herd
typedef struct {
    char *name;                     //  As written in the config
    char *client_bind;              //  HOST:PORT for clients, NULL if off
    char *bus_bind;                 //  Endpoint the bus XPUB binds
    char *bus_endpoint;             //  Endpoint neighbours connect to
    zlistx_t *neighbours;           //  Names (owned strings)
    zconfig_t *node;                //  Its config section (borrowed)
} s_server_t;

struct _herd_config_t {
    char *filename;                 //  Where it was loaded from
    zconfig_t *root;                //  The parsed ZPL tree
    zhashx_t *servers;              //  name -> s_server_t (owned)
    zlistx_t *server_names;         //  Names in file order (owned)
    long numbers [S_NUMBERS];       //  Checked numeric settings
    const char *strings [S_STRINGS];    //  Borrowed from root or defaults
    char *error;                    //  First error found while checking
};

static void
s_server_destroy (void **item_p)
{
    s_server_t *server = (s_server_t *) *item_p;
    if (server) {
        freen (server->name);
        freen (server->client_bind);
        freen (server->bus_bind);
        freen (server->bus_endpoint);
        zlistx_destroy (&server->neighbours);
        freen (server);
        *item_p = NULL;
    }
}

static void
s_string_destroy (void **item_p)
{
    freen (*item_p);
}

//  Records the first error only; later ones are usually consequences
static void
s_fail (herd_config_t *self, const char *format, ...)
{
    if (self->error)
        return;
    va_list args;
    va_start (args, format);
    char *message = zsys_vprintf (format, args);
    va_end (args);
    self->error = zsys_sprintf ("%s: %s", self->filename, message);
    freen (message);
}

static bool
s_word_in (const char *word, const char *words)
{
    size_t length = strlen (word);
    if (length == 0)
        return false;           //  strstr finds "" everywhere, forever
    const char *cursor = words;
    while ((cursor = strstr (cursor, word))) {
        bool starts = cursor == words || cursor [-1] == ' ';
        bool ends = cursor [length] == 0 || cursor [length] == ' ';
        if (starts && ends)
            return true;
        cursor += length;
    }
    return false;
}

//  HOST:PORT with a port from 0 (any free one, for tests) to 65535
static bool
s_host_port_valid (const char *value)
{
    const char *colon = strrchr (value, ':');
    if (!colon || colon == value)
        return false;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    return colon [1] && *end == 0 && port >= 0 && port <= 65535;   //  0: any free port
}

static void
s_check_keys (herd_config_t *self, zconfig_t *section, const char *path, const char *allowed)
{
    zconfig_t *child = zconfig_child (section);
    for (; child; child = zconfig_next (child))
        if (!s_word_in (zconfig_name (child), allowed))
            s_fail (self, "unknown setting %s/%s (expected one of: %s)",
                    path, zconfig_name (child), allowed);
}

//  Adds a setting's name to allowed if it sits directly in section
static void
s_allow_if_in (char *allowed, const char *path, const char *section)
{
    size_t prefix = strlen (section);
    if (!strncmp (path, section, prefix) && path [prefix] == '/' && !strchr (path + prefix + 1, '/')) {
        strcat (allowed, path + prefix + 1);
        strcat (allowed, " ");
    }
}

static void
s_load_settings (herd_config_t *self)
{
    s_check_keys (self, self->root, "", s_sections);
    //  Known keys per section come from the tables above
    const char *sections [] = { "herd", "bus", "places", "places/google",
                                "places/offline", "places/cache", "tls" };
    for (size_t section_nbr = 0; section_nbr < sizeof sections / sizeof sections [0]; section_nbr++) {
        const char *section = sections [section_nbr];
        zconfig_t *node = zconfig_locate (self->root, section);
        if (!node)
            continue;
        char allowed [512] = "";
        for (size_t index = 0; index < S_NUMBERS; index++)
            s_allow_if_in (allowed, s_numbers [index].path, section);
        for (size_t index = 0; index < S_STRINGS; index++)
            s_allow_if_in (allowed, s_strings [index].path, section);
        if (streq (section, "places"))
            strcat (allowed, "google offline cache");
        else
        if (*allowed)
            allowed [strlen (allowed) - 1] = 0;
        s_check_keys (self, node, section, allowed);
    }
    for (size_t index = 0; index < S_NUMBERS; index++) {
        const s_number_t *number = &s_numbers [index];
        const char *text = zconfig_get (self->root, number->path, NULL);
        self->numbers [index] = number->default_value;
        if (!text)
            continue;
        char *end;
        errno = 0;
        long value = strtol (text, &end, 10);
        if (!*text || *end || errno || value < number->minimum || value > number->maximum)
            s_fail (self, "%s = \"%s\": expected a whole number from %ld to %ld",
                    number->path, text, number->minimum, number->maximum);
        else
            self->numbers [index] = value;
    }
    for (size_t index = 0; index < S_STRINGS; index++) {
        const s_string_t *string = &s_strings [index];
        const char *value = zconfig_get (self->root, string->path, string->default_value);
        if (string->choices && !s_word_in (value, string->choices))
            s_fail (self, "%s = \"%s\": expected one of: %s",
                    string->path, value, string->choices);
        self->strings [index] = value;
    }
}

static void
s_load_servers (herd_config_t *self)
{
    zconfig_t *section = zconfig_locate (self->root, "servers");
    if (!section || !zconfig_child (section)) {
        s_fail (self, "no servers: expected a 'servers' section listing each server");
        return;
    }
    zconfig_t *node = zconfig_child (section);
    for (; node; node = zconfig_next (node)) {
        const char *name = zconfig_name (node);
        char path [300];
        snprintf (path, sizeof path, "servers/%s", name);
        s_check_keys (self, node, path, s_server_keys);
        if (zhashx_lookup (self->servers, name)) {
            s_fail (self, "server %s is listed twice", name);
            continue;
        }
        if (strlen (name) > HERD_SERVER_NAME_MAX) {
            s_fail (self, "server %.40s...: a name has at most %d bytes", name, HERD_SERVER_NAME_MAX);
            continue;
        }
        const char *client = zconfig_get (node, "client", NULL);
        const char *bus = zconfig_get (node, "bus", NULL);
        const char *bus_bind = zconfig_get (node, "bus_bind", bus);
        const char *client_tls = zconfig_get (node, "client_tls", NULL);
        bool client_off = client && streq (client, "off");
        if (!client_off && (!client || !s_host_port_valid (client)))
            s_fail (self, "server %s: client = \"%s\": expected HOST:PORT, e.g. 127.0.0.1:11001, "
                    "or off (clients over TLS only)", name, client? client: "");
        if (client_tls && !s_host_port_valid (client_tls))
            s_fail (self, "server %s: client_tls = \"%s\": expected HOST:PORT, e.g. 127.0.0.1:11601",
                    name, client_tls);
        if (client_off && !client_tls)
            s_fail (self, "server %s: client = off, and no client_tls: it would serve no client", name);
        if (!bus || !strstr (bus, "://") || !strstr (bus_bind, "://"))
            s_fail (self, "server %s: bus = \"%s\": expected a ZeroMQ endpoint, e.g. tcp://127.0.0.1:11101",
                    name, bus? bus: "");
        s_server_t *server = (s_server_t *) zmalloc (sizeof (s_server_t));
        server->name = strdup (name);
        server->client_bind = client_off? NULL: strdup (client? client: "");
        server->bus_endpoint = strdup (bus? bus: "");
        server->bus_bind = strdup (bus_bind? bus_bind: "");
        server->node = node;
        //  Optional endpoints: catch-up (sync) and operators (admin)
        const char *optional [] = { "sync", "sync_bind", "feed", "feed_bind", "admin" };
        for (size_t index = 0; index < sizeof optional / sizeof optional [0]; index++) {
            const char *value = zconfig_get (node, optional [index], NULL);
            if (value && !strstr (value, "://"))
                s_fail (self, "server %s: %s = \"%s\": expected a ZeroMQ endpoint, e.g. tcp://127.0.0.1:11201",
                        name, optional [index], value);
        }
        const char *http = zconfig_get (node, "http", NULL);
        if (http && !s_host_port_valid (http))
            s_fail (self, "server %s: http = \"%s\": expected HOST:PORT, e.g. 127.0.0.1:11401", name, http);
        server->neighbours = zlistx_new ();
        zlistx_set_destructor (server->neighbours, s_string_destroy);
        //  Neighbours are separated by spaces or commas
        char *list = strdup (zconfig_get (node, "neighbours", ""));
        char *saveptr = NULL;
        for (char *token = strtok_r (list, " ,\t", &saveptr); token;
             token = strtok_r (NULL, " ,\t", &saveptr))
            zlistx_add_end (server->neighbours, strdup (token));
        freen (list);
        zhashx_insert (self->servers, name, server);
        zlistx_add_end (self->server_names, strdup (name));
    }
    //  The graph: every neighbour is a server, not itself, and links both ways
    const char *name = (const char *) zlistx_first (self->server_names);
    for (; name; name = (const char *) zlistx_next (self->server_names)) {
        s_server_t *server = (s_server_t *) zhashx_lookup (self->servers, name);
        const char *neighbour = (const char *) zlistx_first (server->neighbours);
        for (; neighbour; neighbour = (const char *) zlistx_next (server->neighbours)) {
            s_server_t *other = (s_server_t *) zhashx_lookup (self->servers, neighbour);
            if (!other)
                s_fail (self, "server %s: neighbour %s is not a server of this herd", name, neighbour);
            else
            if (other == server)
                s_fail (self, "server %s lists itself as a neighbour", name);
            else {
                bool linked_back = false;
                const char *back = (const char *) zlistx_first (other->neighbours);
                for (; back; back = (const char *) zlistx_next (other->neighbours))
                    linked_back |= streq (back, name);
                if (!linked_back)
                    s_fail (self, "graph is not symmetric: %s lists %s as a neighbour but %s does not list %s",
                            name, neighbour, neighbour, name);
            }
        }
    }
}

static herd_config_t *
s_config_new (zconfig_t *root, const char *filename, char **error_p)
{
    herd_config_t *self = (herd_config_t *) zmalloc (sizeof (herd_config_t));
    self->filename = strdup (filename);
    self->root = root;
    self->servers = zhashx_new ();
    zhashx_set_destructor (self->servers, s_server_destroy);
    self->server_names = zlistx_new ();
    zlistx_set_destructor (self->server_names, s_string_destroy);
    s_load_settings (self);
    s_load_servers (self);
    if (self->error) {
        *error_p = self->error;
        self->error = NULL;
        herd_config_destroy (&self);
    }
    return self;
}

//  zconfig prints a syntax error to stdout as "... (zconfig): (line) what";
//  we catch that one message (stdout briefly goes to a memfd) so the user
//  gets a single line that names the file and the line
static zconfig_t *
s_parse (const char *text, const char *filename, char **error_p)
{
    fflush (stdout);
    int saved_stdout = dup (STDOUT_FILENO);
    int capture = memfd_create ("herd-zconfig", MFD_CLOEXEC);
    if (capture != -1)
        dup2 (capture, STDOUT_FILENO);
    zconfig_t *root = zconfig_str_load (text);
    fflush (stdout);
    dup2 (saved_stdout, STDOUT_FILENO);
    close (saved_stdout);
    char captured [512] = "";
    if (capture != -1) {
        ssize_t size = pread (capture, captured, sizeof captured - 1, 0);
        captured [size > 0? size: 0] = 0;
        close (capture);
    }
    if (!root) {
        char *message = strstr (captured, "(zconfig): ");
        message = message? message + strlen ("(zconfig): "): NULL;
        int line = 0;
        if (message && sscanf (message, "(%d)", &line) == 1)
            message = strchr (message, ')') + 1;
        if (message)
            message [strcspn (message, "\n")] = 0;
        *error_p = zsys_sprintf ("%s:%d: not valid ZPL:%s", filename, line,
                                 message? message: " syntax error");
    }
    return root;
}

herd_config_t *
herd_config_load_text (const char *text, const char *name, char **error_p)
{
    assert (text);
    assert (error_p);
    *error_p = NULL;
    zconfig_t *root = s_parse (text, name, error_p);
    return root? s_config_new (root, name, error_p): NULL;
}

herd_config_t *
herd_config_load (const char *filename, char **error_p)
{
    assert (filename);
    assert (error_p);
    *error_p = NULL;
    //  zchunk_slurp reads at most the cap; one byte more tells a file
    //  that is too big from one that just fits
    int mode = zsys_file_mode (filename);
    if (mode != -1 && S_ISDIR (mode)) {
        *error_p = zsys_sprintf ("%s: cannot read config: it is a folder", filename);
        return NULL;
    }
    errno = 0;
    zchunk_t *chunk = zchunk_slurp (filename, S_FILE_MAX + 1);
    if (!chunk) {
        *error_p = zsys_sprintf ("%s: cannot read config: %s", filename,
                                 errno? strerror (errno): "not a readable file");
        return NULL;
    }
    herd_config_t *self = NULL;
    if (zchunk_size (chunk) > S_FILE_MAX)
        *error_p = zsys_sprintf ("%s: config is over %d bytes; is it the right file?",
                                 filename, S_FILE_MAX);
    else
    if (memchr (zchunk_data (chunk), 0, zchunk_size (chunk)))
        *error_p = zsys_sprintf ("%s: config holds a NUL byte; is it a text file?", filename);
    else {
        char *text = zchunk_strdup (chunk);
        self = herd_config_load_text (text, filename, error_p);
        freen (text);
    }
    zchunk_destroy (&chunk);
    return self;
}

void
herd_config_destroy (herd_config_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_config_t *self = *self_p;
        zlistx_destroy (&self->server_names);
        zhashx_destroy (&self->servers);
        zconfig_destroy (&self->root);
        freen (self->error);
        freen (self->filename);
        freen (self);
        *self_p = NULL;
    }
}

static s_server_t *
s_server (herd_config_t *self, const char *name)
{
    assert (self);
    s_server_t *server = (s_server_t *) zhashx_lookup (self->servers, name);
    assert (server);                //  Callers check herd_config_has_server
    return server;
}

bool
herd_config_has_server (herd_config_t *self, const char *server)
{
    assert (self);
    return zhashx_lookup (self->servers, server) != NULL;
}

zlistx_t *
herd_config_servers (herd_config_t *self)
{
    assert (self);
    return self->server_names;
}

const char *
herd_config_client_bind (herd_config_t *self, const char *server)
{
    return s_server (self, server)->client_bind;
}

const char *
herd_config_bus_bind (herd_config_t *self, const char *server)
{
    return s_server (self, server)->bus_bind;
}

const char *
herd_config_bus_endpoint (herd_config_t *self, const char *server)
{
    return s_server (self, server)->bus_endpoint;
}

const char *
herd_config_server_endpoint (herd_config_t *self, const char *server, const char *key)
{
    s_server_t *entry = s_server (self, server);
    const char *value = zconfig_get (entry->node, key, NULL);
    //  A *_bind endpoint defaults to the one neighbours connect to
    if (!value && streq (key, "sync_bind"))
        value = zconfig_get (entry->node, "sync", NULL);
    if (!value && streq (key, "feed_bind"))
        value = zconfig_get (entry->node, "feed", NULL);
    return value;
}

char *
herd_config_tls_file (herd_config_t *self, const char *server, const char *what)
{
    assert (self && server && what);
    const char *keys = herd_config_string (self, "herd/keys");
    if (streq (what, "ca_key"))
        return zsys_sprintf ("%s/secret/ca.pem", keys);     //  No setting: where --keygen puts it
    char *path = zsys_sprintf ("tls/%s", what);
    const char *value = herd_config_string (self, path);
    freen (path);
    if (*value) {
        //  {server} stands for the server's name: one line for a herd
        const char *mark = strstr (value, "{server}");
        return mark? zsys_sprintf ("%.*s%s%s", (int) (mark - value), value, server, mark + 8)
                   : strdup (value);
    }
    return streq (what, "ca")?   zsys_sprintf ("%s/ca.crt", keys)
         : streq (what, "cert")? zsys_sprintf ("%s/%s.crt", keys, server)
         : streq (what, "key")?  zsys_sprintf ("%s/secret/%s.pem", keys, server)
         :                       zsys_sprintf ("%s/ca.crl", keys);
}

//  Adds path to changes, a list of owned strings
static void
s_change (zlistx_t *changes, const char *path)
{
    zlistx_add_end (changes, strdup (path));
}

zlistx_t *
herd_config_changes (herd_config_t *self, herd_config_t *other)
{
    assert (self && other);
    zlistx_t *changes = zlistx_new ();
    zlistx_set_destructor (changes, s_string_destroy);
    for (size_t index = 0; index < S_NUMBERS; index++)
        if (self->numbers [index] != other->numbers [index])
            s_change (changes, s_numbers [index].path);
    for (size_t index = 0; index < S_STRINGS; index++)
        if (!streq (self->strings [index], other->strings [index]))
            s_change (changes, s_strings [index].path);
    //  The servers, key by key, as written
    const char *name = (const char *) zlistx_first (self->server_names);
    bool same_names = zlistx_size (self->server_names) == zlistx_size (other->server_names);
    for (; name; name = (const char *) zlistx_next (self->server_names)) {
        s_server_t *mine = (s_server_t *) zhashx_lookup (self->servers, name);
        s_server_t *theirs = (s_server_t *) zhashx_lookup (other->servers, name);
        if (!theirs) {
            same_names = false;
            continue;
        }
        char *keys = strdup (s_server_keys);
        char *saveptr = NULL;
        for (char *key = strtok_r (keys, " ", &saveptr); key; key = strtok_r (NULL, " ", &saveptr)) {
            const char *a = zconfig_get (mine->node, key, ""), *b = zconfig_get (theirs->node, key, "");
            if (!streq (a, b)) {
                char path [400];
                snprintf (path, sizeof path, "servers/%s/%s", name, key);
                s_change (changes, path);
            }
        }
        freen (keys);
    }
    if (!same_names)
        s_change (changes, "servers");
    return changes;
}

zlistx_t *
herd_config_neighbours (herd_config_t *self, const char *server)
{
    return s_server (self, server)->neighbours;
}

long
herd_config_number (herd_config_t *self, const char *path)
{
    assert (self);
    for (size_t index = 0; index < S_NUMBERS; index++)
        if (streq (s_numbers [index].path, path))
            return self->numbers [index];
    assert (false);                 //  Unknown key is a programming error
    return 0;
}

const char *
herd_config_string (herd_config_t *self, const char *path)
{
    assert (self);
    for (size_t index = 0; index < S_STRINGS; index++)
        if (streq (s_strings [index].path, path))
            return self->strings [index];
    assert (false);
    return NULL;
}

const char *
herd_config_filename (herd_config_t *self)
{
    assert (self);
    return self->filename;
}

//  --------------------------------------------------------------------------
//  Selftest

static void
s_expect_error (const char *text, const char *expected, bool verbose)
{
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "test.cfg", &error);
    assert (!config);
    assert (error);
    if (verbose)
        printf ("    error: %s\n", error);
    if (!strstr (error, expected)) {
        printf ("expected '%s' in '%s'\n", expected, error);
        assert (false);
    }
    freen (error);
}

void
herd_config_test (bool verbose)
{
    printf (" * herd_config: ");
    if (verbose)
        printf ("\n");
    const char *good =
        "herd\n"
        "    max_line = 100\n"
        "places\n"
        "    provider = none\n"
        "servers\n"
        "    A\n"
        "        client = 127.0.0.1:7001\n"
        "        bus = tcp://127.0.0.1:7101\n"
        "        neighbours = \"B C\"\n"
        "    B\n"
        "        client = 127.0.0.1:7002\n"
        "        bus = tcp://127.0.0.1:7102\n"
        "        neighbours = A\n"
        "    C\n"
        "        client = 127.0.0.1:7003\n"
        "        bus = tcp://127.0.0.1:7103\n"
        "        bus_bind = tcp://*:7103\n"
        "        neighbours = A\n";
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (good, "good.cfg", &error);
    assert (config);
    assert (!error);
    assert (herd_config_has_server (config, "A"));
    assert (!herd_config_has_server (config, "D"));
    assert (zlistx_size (herd_config_servers (config)) == 3);
    assert (zlistx_size (herd_config_neighbours (config, "A")) == 2);
    assert (streq (herd_config_client_bind (config, "B"), "127.0.0.1:7002"));
    char *file = herd_config_tls_file (config, "B", "key");
    assert (streq (file, "state/keys/secret/B.pem"));
    freen (file);
    //  What changed between two loads of a config: settings and servers
    {
        char *changed_text = strdup (good);
        //  The same file, with client_ttl and fsync set and B's client port moved
        char *at = strstr (changed_text, "127.0.0.1:7002");
        memcpy (at, "127.0.0.1:7009", 14);
        char *grown = zsys_sprintf ("herd\n    client_ttl = 60\n    fsync = always\n%s", changed_text + 5);
        freen (changed_text);
        changed_text = grown;
        herd_config_t *changed = herd_config_load_text (changed_text, "changed.cfg", &error);
        assert (changed);
        zlistx_t *changes = herd_config_changes (config, changed);
        char found [400] = "";
        for (char *path = (char *) zlistx_first (changes); path; path = (char *) zlistx_next (changes)) {
            strcat (found, path);
            strcat (found, " ");
        }
        assert (strstr (found, "herd/client_ttl ") && strstr (found, "herd/fsync ")
             && strstr (found, "servers/B/client ") && !strstr (found, "servers/A/"));
        zlistx_destroy (&changes);
        changes = herd_config_changes (config, config);
        assert (zlistx_size (changes) == 0);
        zlistx_destroy (&changes);
        herd_config_destroy (&changed);
        freen (changed_text);
    }
    assert (streq (herd_config_bus_bind (config, "A"), "tcp://127.0.0.1:7101"));
    assert (streq (herd_config_bus_bind (config, "C"), "tcp://*:7103"));
    assert (streq (herd_config_bus_endpoint (config, "C"), "tcp://127.0.0.1:7103"));
    assert (herd_config_number (config, "herd/max_line") == 100);
    assert (herd_config_number (config, "herd/max_pending") == HERD_MAX_PENDING_DEFAULT);
    assert (streq (herd_config_string (config, "places/provider"), "none"));
    assert (streq (herd_config_string (config, "places/google/api"), "new"));
    herd_config_destroy (&config);
    herd_config_destroy (&config);      //  Idempotent

    const char *servers =
        "servers\n"
        "    A\n"
        "        client = 127.0.0.1:7001\n"
        "        bus = tcp://127.0.0.1:7101\n"
        "        neighbours = B\n";
    s_expect_error (servers, "neighbour B is not a server", verbose);
    char *asymmetric = zsys_sprintf ("%s    B\n        client = 127.0.0.1:7002\n"
                                     "        bus = tcp://127.0.0.1:7102\n", servers);
    s_expect_error (asymmetric, "not symmetric: A lists B", verbose);
    freen (asymmetric);
    s_expect_error ("herd\n    max_line = lots\n", "herd/max_line = \"lots\"", verbose);
    s_expect_error ("herd\n    max_line = 10\n", "from 64 to", verbose);
    s_expect_error ("herd\n    maxline = 10\n", "unknown setting herd/maxline", verbose);
    s_expect_error ("places\n    provider = bing\n", "places/provider = \"bing\"", verbose);
    s_expect_error ("herd\n    a = 1\n   bad\n", "test.cfg:3: not valid ZPL", verbose);
    s_expect_error ("herd\n", "no servers", verbose);
    s_expect_error ("servers\n    A\n        client = nowhere\n        bus = tcp://x:1\n",
                    "expected HOST:PORT", verbose);
    s_expect_error ("servers\n    A\n        client = off\n        bus = tcp://x:1\n",
                    "it would serve no client", verbose);
    s_expect_error ("servers\n    A\n        client = off\n        client_tls = x\n        bus = tcp://x:1\n",
                    "client_tls = \"x\": expected HOST:PORT", verbose);
    s_expect_error ("tls\n    client_certs = never\nservers\n    A\n        client = off\n"
                    "        client_tls = x:1\n        bus = tcp://x:1\n", "expected one of: required optional", verbose);
    config = herd_config_load ("/nonexistent/herd.cfg", &error);
    assert (!config);
    assert (strstr (error, "cannot read config"));
    freen (error);
    printf ("OK\n");
}
