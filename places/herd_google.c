//  places/herd_google.c: Google Places over libcurl and jansson.

#include "places/herd_places_layer.h"

#define S_NEW_URL       "https://places.googleapis.com"
#define S_LEGACY_URL    "https://maps.googleapis.com"

struct _herd_google_t {
    bool legacy;                //  Legacy Nearby Search, else New API
    char *url;                  //  Base URL, no trailing slash
    char *key;                  //  API key; never logged
    char *field_mask;           //  "X-Goog-FieldMask: ..." (places/google/fields): Google bills by it
    long timeout_ms;            //  Whole-request bound
    CURL *curl;                 //  Reused: keeps the connection alive
    char *body;                 //  Response being received (owned)
    size_t body_size;
    bool body_too_big;          //  Write callback refused more
};

herd_google_t *
herd_google_new (const char *api, const char *url, const char *key, long timeout_ms, const char *fields)
{
    assert (api && url && key && fields);
    herd_google_t *self = (herd_google_t *) zmalloc (sizeof (herd_google_t));
    self->legacy = streq (api, "legacy");
    self->url = strdup (*url? url: self->legacy? S_LEGACY_URL: S_NEW_URL);
    size_t length = strlen (self->url);
    while (length > 0 && self->url [length - 1] == '/')
        self->url [--length] = 0;
    self->key = strdup (key);
    self->field_mask = zsys_sprintf ("X-Goog-FieldMask: %s", fields);
    self->timeout_ms = timeout_ms;
    self->curl = curl_easy_init ();
    assert (self->curl);
    return self;
}

void
herd_google_destroy (herd_google_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_google_t *self = *self_p;
        curl_easy_cleanup (self->curl);
        freen (self->url);
        freen (self->key);
        freen (self->field_mask);
        freen (self->body);
        freen (self);
        *self_p = NULL;
    }
}

//  Bounded body: MAXFILESIZE alone misses bodies of unknown length
static size_t
s_write_body (char *data, size_t size, size_t count, void *arg)
{
    herd_google_t *self = (herd_google_t *) arg;
    size_t bytes = size * count;
    if (self->body_size + bytes > HERD_PLACES_BODY_MAX) {
        self->body_too_big = true;
        return 0;                   //  Makes curl fail with a write error
    }
    self->body = (char *) realloc (self->body, self->body_size + bytes + 1);
    assert (self->body);
    memcpy (self->body + self->body_size, data, bytes);
    self->body_size += bytes;
    self->body [self->body_size] = 0;
    return bytes;
}

//  One result of the New API in Nearby Search shape
static json_t *
s_convert_place (json_t *place)
{
    json_t *location = json_object_get (place, "location");
    json_t *latitude = json_object_get (location, "latitude");
    json_t *longitude = json_object_get (location, "longitude");
    const char *id = json_string_value (json_object_get (place, "id"));
    if (!json_is_number (latitude) || !json_is_number (longitude) || !id)
        return NULL;
    const char *name = json_string_value (json_object_get (
                           json_object_get (place, "displayName"), "text"));
    const char *vicinity = json_string_value (json_object_get (place, "shortFormattedAddress"));
    if (!vicinity)
        vicinity = json_string_value (json_object_get (place, "formattedAddress"));
    json_t *types = json_object_get (place, "types");
    json_t *result = json_pack ("{s:s, s:s, s:{s:{s:O, s:O}}, s:o, s:s}",
        "name", name? name: "",
        "place_id", id,
        "geometry", "location", "lat", latitude, "lng", longitude,
        "types", json_is_array (types)? json_incref (types): json_array (),
        "vicinity", vicinity? vicinity: "");
    json_t *rating = json_object_get (place, "rating");
    if (json_is_number (rating))
        json_object_set (result, "rating", rating);
    json_t *ratings = json_object_get (place, "userRatingCount");
    if (json_is_integer (ratings))
        json_object_set (result, "user_ratings_total", ratings);
    json_t *status = json_object_get (place, "businessStatus");
    if (json_is_string (status))
        json_object_set (result, "business_status", status);
    return result;
}

json_t *
herd_google_convert_new (json_t *body)
{
    if (!json_is_object (body))
        return herd_nearby_error ("google: response is not a JSON object");
    json_t *places = json_object_get (body, "places");
    if (places && !json_is_array (places))
        return herd_nearby_error ("google: \"places\" is not an array");
    json_t *results = json_array ();
    size_t index;
    json_t *place;
    json_array_foreach (places, index, place) {
        json_t *result = s_convert_place (place);
        if (result)
            json_array_append_new (results, result);
    }
    return herd_nearby_response (results);
}

//  The legacy API answers in our shape already; only its status matters
static json_t *
s_convert_legacy (json_t *body)
{
    const char *status = json_string_value (json_object_get (body, "status"));
    json_t *results = json_object_get (body, "results");
    if (!status || !json_is_array (results))
        return herd_nearby_error ("google: response has no status and results");
    if (streq (status, "OK") || streq (status, "ZERO_RESULTS"))
        return json_incref (body);
    const char *message = json_string_value (json_object_get (body, "error_message"));
    return herd_nearby_error ("google: %s%s%s", status, message? ": ": "", message? message: "");
}

json_t *
herd_google_search (herd_google_t *self, const herd_query_t *query)
{
    assert (self);
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    freen (self->body);
    self->body_size = 0;
    self->body_too_big = false;
    struct curl_slist *headers = NULL;
    char *request = NULL;
    char *url;
    if (self->legacy) {
        char *key = curl_easy_escape (curl, self->key, 0);
        url = zsys_sprintf ("%s/maps/api/place/nearbysearch/json?location=%.7f,%.7f&radius=%.0f&key=%s",
                            self->url, query->latitude, query->longitude, query->radius_m, key);
        curl_free (key);
    }
    else {
        url = zsys_sprintf ("%s/v1/places:searchNearby", self->url);
        json_t *body = json_pack ("{s:i, s:{s:{s:{s:f, s:f}, s:f}}}",
            "maxResultCount", HERD_RESULTS_MAX,
            "locationRestriction", "circle", "center",
            "latitude", query->latitude, "longitude", query->longitude,
            "radius", query->radius_m);
        //  Ten significant digits: the client's own, not a double's noise
        //  (34.06893, not 34.068930000000002)
        request = json_dumps (body, JSON_COMPACT | JSON_REAL_PRECISION (10));
        json_decref (body);
        char *key_header = zsys_sprintf ("X-Goog-Api-Key: %s", self->key);
        headers = curl_slist_append (headers, "Content-Type: application/json");
        headers = curl_slist_append (headers, key_header);
        headers = curl_slist_append (headers, self->field_mask);
        freen (key_header);
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, request);
    }
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt (curl, CURLOPT_MAXFILESIZE, (long) HERD_PLACES_BODY_MAX);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_write_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "herd/" HERD_VERSION);
    curl_easy_setopt (curl, CURLOPT_ACCEPT_ENCODING, "");
    CURLcode code = curl_easy_perform (curl);
    long http_status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &http_status);
    curl_slist_free_all (headers);
    freen (request);
    freen (url);

    if (self->body_too_big)
        return herd_nearby_error ("google: response larger than %d bytes", HERD_PLACES_BODY_MAX);
    if (code != CURLE_OK)
        return herd_nearby_error ("google: %s", curl_easy_strerror (code));
    json_error_t error;
    json_t *body = self->body? json_loadb (self->body, self->body_size, 0, &error): NULL;
    json_t *response;
    if (http_status != 200) {
        //  The New API explains itself in {"error": {"message": ...}}
        const char *message = json_string_value (json_object_get (
                                  json_object_get (body, "error"), "message"));
        response = herd_nearby_error ("google: HTTP %ld%s%s", http_status,
                                      message? ": ": "", message? message: "");
    }
    else
    if (!body)
        response = herd_nearby_error ("google: bad JSON: %s", self->body? error.text: "empty body");
    else
        response = self->legacy? s_convert_legacy (body): herd_google_convert_new (body);
    json_decref (body);
    return response;
}

//  --------------------------------------------------------------------------
//  Selftest: conversion, and a request to a closed port (fails fast)

void
herd_google_test (bool verbose)
{
    printf (" * herd_google: ");
    if (verbose)
        printf ("\n");
    json_t *body = json_loads (
        "{\"places\": [{\"id\": \"abc\", \"displayName\": {\"text\": \"UCLA\"},"
        "  \"location\": {\"latitude\": 34.07, \"longitude\": -118.44},"
        "  \"types\": [\"university\"], \"shortFormattedAddress\": \"Los Angeles\","
        "  \"rating\": 4.5, \"userRatingCount\": 100},"
        " {\"id\": \"no-location\"}]}", 0, NULL);
    assert (body);
    json_t *response = herd_google_convert_new (body);
    assert (streq (herd_nearby_status (response), "OK"));
    assert (herd_nearby_count (response) == 1);
    json_t *result = json_array_get (json_object_get (response, "results"), 0);
    assert (streq (json_string_value (json_object_get (result, "name")), "UCLA"));
    assert (streq (json_string_value (json_object_get (result, "place_id")), "abc"));
    assert (json_real_value (json_object_get (json_object_get (
        json_object_get (result, "geometry"), "location"), "lng")) == -118.44);
    assert (json_integer_value (json_object_get (result, "user_ratings_total")) == 100);
    json_decref (response);
    json_decref (body);

    body = json_loads ("{}", 0, NULL);
    response = herd_google_convert_new (body);
    assert (streq (herd_nearby_status (response), "ZERO_RESULTS"));
    json_decref (response);
    json_decref (body);

    //  Nothing listens on port 1: a clear error, no hang
    herd_google_t *google = herd_google_new ("new", "http://127.0.0.1:1/", "key", 2000, "places.id");
    herd_query_t query = { 34.07, -118.44, 1000, 5 };
    response = herd_google_search (google, &query);
    assert (streq (herd_nearby_status (response), "UNKNOWN_ERROR"));
    if (verbose)
        printf ("    %s\n", json_string_value (json_object_get (response, "error_message")));
    json_decref (response);
    herd_google_destroy (&google);
    herd_google_destroy (&google);
    printf ("OK\n");
}
