"""WHATSAT through the places worker pool to a local stand-in for Google's
Places API (the only fake in the suite)."""

import json
import time

import pytest

from conftest import AT_PATTERN

from conftest import GOOGLE_KEY as KEY, google_herd


def check_shape(result):
    assert isinstance(result["name"], str)
    assert isinstance(result["place_id"], str)
    assert isinstance(result["geometry"]["location"]["lat"], float)
    assert isinstance(result["geometry"]["location"]["lng"], float)
    assert isinstance(result["types"], list)
    assert isinstance(result["vicinity"], str)


@pytest.mark.parametrize("api", ["new", "legacy"])
def test_google_sees_the_right_request_and_results_are_cut(make_herd, google, api):
    herd = google_herd(make_herd, google, api)
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
    stored = connection.line()
    at_line, places = connection.whatsat("kiwi.cs.ucla.edu", 10, 5)
    assert at_line == stored
    assert places["status"] == "OK"
    assert len(places["results"]) == 5
    for result in places["results"]:
        check_shape(result)
    assert places["results"][0]["name"] == "Place 0"
    request = google.requests[-1]
    if api == "new":
        assert request["method"] == "POST"
        assert request["path"] == "/v1/places:searchNearby"
        assert request["headers"]["X-Goog-Api-Key"] == KEY
        #   Only what the answer needs: nothing billed at the Enterprise SKU
        mask = request["headers"]["X-Goog-FieldMask"].split(",")
        assert "places.displayName" in mask and "places.location" in mask
        assert "places.rating" not in mask and "places.userRatingCount" not in mask
        #   The client's digits, not a double's noise
        assert b"34.06893," in request["raw"] and b"34.068930000" not in request["raw"]
        circle = request["body"]["locationRestriction"]["circle"]
        assert circle["center"] == {"latitude": pytest.approx(34.068930),
                                    "longitude": pytest.approx(-118.445127)}
        assert circle["radius"] == pytest.approx(10000)
    else:
        assert request["method"] == "GET"
        assert request["path"] == "/maps/api/place/nearbysearch/json"
        assert request["query"]["key"] == [KEY]
        assert request["query"]["radius"] == ["10000"]
        latitude, longitude = map(float, request["query"]["location"][0].split(","))
        assert latitude == pytest.approx(34.068930) and longitude == pytest.approx(-118.445127)
    #   Twenty asked, twenty given; a radius in km with a fraction, in metres
    at_line, places = connection.whatsat("kiwi.cs.ucla.edu", 0.5, 20)
    assert len(places["results"]) == 20
    last = google.requests[-1]
    radius = last["body"]["locationRestriction"]["circle"]["radius"] if api == "new" \
        else float(last["query"]["radius"][0])
    assert radius == pytest.approx(500)


def test_zero_results(make_herd, google):
    herd = google_herd(make_herd, google)
    google.mode = "empty"
    connection = herd.client("Bailey")
    connection.send(b"IAMAT lonely +0+0 1\n")
    connection.line()
    at_line, places = connection.whatsat("lonely", 1, 5)
    assert places == {"html_attributions": [], "results": [], "status": "ZERO_RESULTS"}


@pytest.mark.parametrize("mode", ["error", "badjson", "slow"])
def test_provider_failures_give_unknown_error_in_bounded_time(make_herd, google, mode):
    herd = google_herd(make_herd, google, timeout=500)
    google.mode = mode
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +34-118 1\n")
    connection.line()
    started = time.monotonic()
    connection.send(b"WHATSAT kiwi 10 5\n")
    #   While a worker waits on the provider, other clients are served
    other = herd.client("Bailey")
    other.send(b"IAMAT busy +1+1 2\n")
    assert AT_PATTERN.match(other.line())
    assert time.monotonic() - started < 0.5 or mode != "slow"
    at_line, text = connection.until_blank().split(b"\n", 1)
    elapsed = time.monotonic() - started
    places = json.loads(text)
    assert places["status"] == "UNKNOWN_ERROR"
    assert places["results"] == []
    assert places["error_message"].startswith("google:")
    assert elapsed < 3, elapsed
    #   The server keeps serving
    connection.send(b"IAMAT kiwi +34-118 3\n")
    assert AT_PATTERN.match(connection.line())
    assert "UNKNOWN_ERROR" in herd.log("Bailey")


def test_forcing_google_without_a_key_is_a_clear_start_error(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"places/provider": "google"}, start=False)
    process = herd.spawn("Bailey")
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 1
    assert stderr.decode().strip() == "herd: Bailey: places/provider is google but HERD_GOOGLE_API_KEY is not set"


def test_cache_serves_repeats_without_calling_the_provider(make_herd, google):
    herd = google_herd(make_herd, google)
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +34.068930-118.445127 1\n")
    connection.line()
    _, first = connection.whatsat("kiwi", 10, 20)
    assert len(google.requests) == 1
    #   Same place and radius, any count: from the cache, cut after it
    for count in (20, 5, 1):
        _, again = connection.whatsat("kiwi", 10, count)
        assert again["results"] == first["results"][:count]
    #   A client 50 m away rounds to the same key (0.001 degree)
    connection.send(b"IAMAT pear +34.069100-118.445300 1\n")
    connection.line()
    connection.whatsat("pear", 10, 3)
    assert len(google.requests) == 1
    assert "cache hit" in herd.log("Bailey")
    #   Another radius is another question
    connection.whatsat("kiwi", 11, 3)
    assert len(google.requests) == 2


def test_cache_entries_expire_and_errors_are_not_cached(make_herd, google):
    herd = google_herd(make_herd, google, settings={"places/cache/ttl": 1})
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +34.068930-118.445127 1\n")
    connection.line()
    connection.whatsat("kiwi", 10, 5)
    connection.whatsat("kiwi", 10, 5)
    assert len(google.requests) == 1
    time.sleep(1.3)
    connection.whatsat("kiwi", 10, 5)
    assert len(google.requests) == 2
    google.mode = "error"
    connection.whatsat("kiwi", 20, 5)
    connection.whatsat("kiwi", 20, 5)
    assert len(google.requests) == 4


def test_the_same_question_at_once_asks_the_provider_once(make_herd, google):
    herd = google_herd(make_herd, google)
    google.mode, google.slow_seconds = "slow", 0.5
    connections = []
    for n in range(10):
        connection = herd.client("Bailey")
        connection.send(f"IAMAT same{n} +34.068930-118.445127 1\n".encode())
        connection.line()
        connection.send(f"WHATSAT same{n} 10 {n + 1}\n".encode())
        connections.append(connection)
    for n, connection in enumerate(connections):
        at_line, text = connection.until_blank().split(b"\n", 1)
        places = json.loads(text)
        assert places["status"] == "OK" and len(places["results"]) == n + 1
    assert len(google.requests) == 1


def test_a_provider_body_past_the_cap_is_an_error_not_memory(make_herd, google):
    """HERD_PLACES_BODY_MAX (4 MiB) bounds what one answer may cost: a
    bigger body, valid JSON or not, is cut off and answered UNKNOWN_ERROR
    (without the cap this one would parse, as ZERO_RESULTS)."""
    herd = google_herd(make_herd, google)
    google.mode = "huge"
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +34.068930-118.445127 1\n")
    connection.line()
    _, places = connection.whatsat("kiwi", 10, 5)
    assert places["status"] == "UNKNOWN_ERROR", places
    assert len(google.requests) == 1
    google.mode = "ok"
    _, places = connection.whatsat("kiwi", 10, 5)
    assert places["status"] == "OK"
