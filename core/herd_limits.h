//  core/herd_limits.h: every default bound of a herd server in one place.
//  Each one can be overridden in the config file (see herd.cfg); the
//  config loader enforces the minimum and maximum given here.

#ifndef HERD_LIMITS_H_INCLUDED
#define HERD_LIMITS_H_INCLUDED

//  Longest command line in bytes, not counting its line ending
#define HERD_MAX_LINE_DEFAULT       8192
#define HERD_MAX_LINE_MIN           64
#define HERD_MAX_LINE_MAX           (1024 * 1024)

//  Reply bytes queued for one client that does not read; past this the
//  client is dropped (like Redis's client-output-buffer-limit)
#define HERD_MAX_PENDING_DEFAULT    (1024 * 1024)
#define HERD_MAX_PENDING_MIN        (16 * 1024)
#define HERD_MAX_PENDING_MAX        (1024 * 1024 * 1024)

//  Concurrent client connections per server
#define HERD_MAX_CLIENTS_DEFAULT    10000
#define HERD_MAX_CLIENTS_MAX        1000000

//  Seconds a connection may send no whole line (nothing, or a line it
//  never finishes: slowloris) before it is closed; 0: never
#define HERD_IDLE_TIMEOUT_DEFAULT   120
#define HERD_IDLE_TIMEOUT_MAX       86400

//  Seconds a new connection may go without its first whole line (0:
//  never); when every slot is taken, such connections are closed first,
//  oldest first, to make room
#define HERD_FIRST_LINE_TIMEOUT_DEFAULT 10

//  Bytes of a server's name (it heads every AT line the server makes)
#define HERD_SERVER_NAME_MAX        255

//  Log lines one source (a neighbour, a client address, a monitor's key)
//  may cause per interval; past it they are counted and the next line
//  says how many were suppressed (as the kernel's printk ratelimit)
#define HERD_LOG_BURST              10
#define HERD_LOG_INTERVAL           5000        //  msecs
//  Sources told apart by one limiter; past it new ones share a budget
#define HERD_LOG_SOURCES_MAX        1024

//  Connections from one client address at once (0: no limit), so one
//  host cannot take every one of max_clients
#define HERD_MAX_PER_ADDRESS_DEFAULT 2000

//  Reply bytes queued for all clients together; past it the clients
//  with the most queued are dropped first (max_pending bounds each one)
#define HERD_MAX_OUTPUT_TOTAL_DEFAULT (256L * 1024 * 1024)
#define HERD_MAX_OUTPUT_TOTAL_MAX   (64L * 1024 * 1024 * 1024)

//  Bytes below which a journal is never compacted (as Redis's
//  auto-aof-rewrite-min-size): a small herd under steady load would
//  otherwise rewrite every few seconds
#define HERD_JOURNAL_REWRITE_MIN_DEFAULT    (64L * 1024 * 1024)
#define HERD_JOURNAL_REWRITE_MIN_MAX        (1024L * 1024 * 1024 * 1024)

//  Clients held in the location store
#define HERD_MAX_STORED_DEFAULT     1000000
#define HERD_MAX_STORED_MAX         100000000

//  Seconds a client time may lie ahead of the server's clock; past it an
//  IAMAT is answered "?" and a neighbour's update dropped (0: no bound)
#define HERD_MAX_FUTURE_DEFAULT     86400
#define HERD_MAX_FUTURE_MAX         (100L * 365 * 86400)

//  The bus's format (docs/PROTOCOL.md section 2), in every message's head:
//  servers of two formats cannot talk, and each says so. 1: AT lines only;
//  2: batches carry GONE lines (forgetting) too
#define HERD_BUS_FORMAT             2

//  Forgetting (docs/PROTOCOL.md, FORGET). Seconds a tombstone is kept,
//  from when its forget was made: a partition longer than this may bring
//  back, when it heals, an update older than the forget (7 days)
#define HERD_TOMBSTONE_TTL_DEFAULT  (7L * 86400)
//  Seconds by which a forgotten or expired location has left the journal
//  (a rewrite drops it)
#define HERD_FORGET_REWRITE_DEFAULT 3600
//  Days a rotated log file (NAME.log.*) is kept before the server deletes
//  it: the traffic log holds every client's lines
#define HERD_LOG_RETENTION_DEFAULT  7
//  Expiry's work per slice of the loop: at most this long, so a million
//  clients expiring at once never hold up the others
#define HERD_SWEEP_USECS            500
#define HERD_SWEEP_INTERVAL         50

//  What a peer may send to sockets that only take small requests (PUB
//  subscriptions, sync and admin requests): anything bigger is refused
//  by libzmq before it is read (ZMQ_MAXMSGSIZE)
#define HERD_REQUEST_MAXMSGSIZE     1024

//  Longest client id (docs/PROTOCOL.md section 1)
#define HERD_CLIENT_ID_MAX          255

//  Bus: biggest message (a batch of updates), and queue depths (batches)
//  per socket: a batch holds at most 32 KiB of AT lines, so a subscriber
//  that stops reading holds at most hwm x 32 KiB before it loses batches
#define HERD_BUS_MAXMSGSIZE         (64 * 1024)
//  Distinct prefixes subscribed on a bus: each neighbour takes one, ""
#define HERD_BUS_MAX_SUBSCRIPTIONS  16
#define HERD_BUS_HWM_DEFAULT        2000

//  Feed: updates queued per monitor before it loses them, at most; the
//  feed's bound on bytes, shared by its monitors, may make it fewer
#define HERD_FEED_HWM_DEFAULT       100000
//  Monitors connected to a feed at once: past it the slowest is dropped
#define HERD_FEED_MAX_MONITORS_DEFAULT  64
#define HERD_FEED_MAX_MONITORS_MAX      10000
//  Bytes all monitors' queues on a feed may hold together: each monitor
//  queues feed_max_bytes / feed_max_monitors / HERD_FEED_UPDATE_BYTES
//  updates at most (an update queued costs libzmq about this much: two
//  message structures of 64 bytes and the AT line's copy)
#define HERD_FEED_MAX_BYTES_DEFAULT     (64L * 1024 * 1024)
#define HERD_FEED_MAX_BYTES_MIN         (1024L * 1024)
#define HERD_FEED_MAX_BYTES_MAX         (64L * 1024 * 1024 * 1024)
#define HERD_FEED_UPDATE_BYTES          256
//  Seconds a monitor may take nothing while updates wait for it
#define HERD_FEED_MAX_STALL_DEFAULT     10
#define HERD_FEED_MAX_STALL_MAX         3600
//  Distinct prefixes a feed holds for all its monitors: libzmq keeps
//  each in a trie of about 30 bytes a character until its subscriber
//  leaves. A map subscribes one (""), a monitor of a few clients a few.
#define HERD_FEED_MAX_SUBSCRIPTIONS_DEFAULT 1000
#define HERD_FEED_MAX_SUBSCRIPTIONS_MAX     1000000

//  Catch-up: AT lines per snapshot chunk, and so the biggest chunk
#define HERD_SYNC_CHUNK_LINES       500
#define HERD_SYNC_MAXMSGSIZE        ((int64_t) HERD_SYNC_CHUNK_LINES * (HERD_BUS_MAXMSGSIZE + 64))

//  Sockets read inside the frontend's loop never wait: zloop calls a
//  reader when a message is there, and a message cut short by a dropped
//  link must come back as an error, not hang the loop (ZMQ_RCVTIMEO)
#define HERD_LOOP_RCVTIMEO          0

//  Places: worker threads, jobs waiting for a worker, provider timeout
#define HERD_PLACES_WORKERS_DEFAULT 4
#define HERD_PLACES_WORKERS_MAX     64
#define HERD_PLACES_QUEUE_DEFAULT   1000
#define HERD_PLACES_QUEUE_MAX       1000000
#define HERD_PLACES_TIMEOUT_DEFAULT 5000        //  msecs
#define HERD_PLACES_TIMEOUT_MAX     120000
//  Largest provider HTTP body we accept; curl's MAXFILESIZE alone does not
//  cover bodies of unknown size before curl 8.4, so the write callback caps it
#define HERD_PLACES_BODY_MAX        (4 * 1024 * 1024)

//  Places cache: seconds an answer stays fresh, and bytes for all answers
#define HERD_PLACES_TTL_DEFAULT     300
#define HERD_PLACES_TTL_MAX         604800
#define HERD_PLACES_CACHE_DEFAULT   (32 * 1024 * 1024)
#define HERD_PLACES_CACHE_MIN       (64 * 1024)
#define HERD_PLACES_CACHE_MAX       (4L * 1024 * 1024 * 1024)

//  The Places API (New) field mask: what a Nearby Search answer needs, all
//  in the Nearby Search Pro SKU (rating and userRatingCount would bill
//  every request at the Enterprise SKU)
#define HERD_GOOGLE_FIELDS_DEFAULT  "places.id,places.displayName,places.location,places.types," \
                                    "places.shortFormattedAddress,places.formattedAddress"

//  WHATSAT ranges (docs/PROTOCOL.md section 1)
#define HERD_RADIUS_KM_MAX          50
#define HERD_RESULTS_MAX            20

#endif
