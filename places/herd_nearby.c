//  places/herd_nearby.c: build and print Nearby Search responses.

#include "places/herd_places_layer.h"

json_t *
herd_nearby_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *message = zsys_vprintf (format, args);
    va_end (args);
    json_t *response = json_pack ("{s:[], s:[], s:s, s:s}",
                                  "html_attributions", "results",
                                  "status", "UNKNOWN_ERROR", "error_message", message);
    freen (message);
    assert (response);
    return response;
}

json_t *
herd_nearby_response (json_t *results)
{
    assert (json_is_array (results));
    const char *status = json_array_size (results)? "OK": "ZERO_RESULTS";
    json_t *response = json_pack ("{s:[], s:o, s:s}", "html_attributions",
                                  "results", results, "status", status);
    assert (response);
    return response;
}

const char *
herd_nearby_status (json_t *response)
{
    const char *status = json_string_value (json_object_get (response, "status"));
    return status? status: "";
}

size_t
herd_nearby_count (json_t *response)
{
    return json_array_size (json_object_get (response, "results"));
}

char *
herd_nearby_text (json_t *response, size_t max_results)
{
    assert (response);
    //  A shallow copy shares the members; only its results are cut
    json_t *copy = json_copy (response);
    json_t *results = json_object_get (copy, "results");
    if (json_array_size (results) > max_results) {
        json_t *cut = json_array ();
        for (size_t index = 0; index < max_results; index++)
            json_array_append (cut, json_array_get (results, index));
        json_object_set_new (copy, "results", cut);
    }
    //  Clients cannot follow a page token past our cut
    json_object_del (copy, "next_page_token");
    char *text = json_dumps (copy, JSON_INDENT (3) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (10));
    json_decref (copy);
    assert (text);
    //  jansson escapes newlines inside strings, so an indented dump has no
    //  empty line; still enforce the protocol's rule rather than trust that
    char *write = text;
    for (char *read = text; *read; read++)
        if (!(*read == '\n' && (write == text || write [-1] == '\n')))
            *write++ = *read;
    while (write > text && write [-1] == '\n')
        write--;
    *write = 0;
    return text;
}

void
herd_nearby_test (bool verbose)
{
    printf (" * herd_nearby: ");
    if (verbose)
        printf ("\n");
    json_t *error = herd_nearby_error ("provider said %d", 42);
    assert (streq (herd_nearby_status (error), "UNKNOWN_ERROR"));
    char *text = herd_nearby_text (error, 5);
    assert (strstr (text, "\"error_message\": \"provider said 42\""));
    assert (!strstr (text, "\n\n"));
    freen (text);
    json_decref (error);

    json_t *empty = herd_nearby_response (json_array ());
    assert (streq (herd_nearby_status (empty), "ZERO_RESULTS"));
    json_decref (empty);

    json_t *results = json_array ();
    for (int index = 0; index < 5; index++)
        json_array_append_new (results, json_pack ("{s:s, s:i}", "name", "multi\n\nline", "n", index));
    json_t *response = herd_nearby_response (results);
    json_object_set_new (response, "next_page_token", json_string ("x"));
    assert (streq (herd_nearby_status (response), "OK"));
    text = herd_nearby_text (response, 2);
    json_t *parsed = json_loads (text, 0, NULL);
    assert (parsed);
    assert (json_array_size (json_object_get (parsed, "results")) == 2);
    assert (!json_object_get (parsed, "next_page_token"));
    assert (!strstr (text, "\n\n"));
    assert (text [strlen (text) - 1] == '}');
    if (verbose)
        printf ("%s\n", text);
    json_decref (parsed);
    freen (text);
    //  The original still holds everything, for the next max_results
    assert (herd_nearby_count (response) == 5);
    json_decref (response);
    printf ("OK\n");
}
