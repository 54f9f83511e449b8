"""The offline places provider over the real data (GeoNames cities500 and
airports), checked against this test's own haversine brute force."""

import math
import os
import random
import shutil
import struct
import time

import pytest

from conftest import PLACES_DATA

UCLA = (34.068930, -118.445127)
EARTH_RADIUS = 6371008.8


class Places:
    """The converted data file, read independently of the server."""

    def __init__(self, path):
        with open(path, "rb") as file:
            data = file.read()
        magic, count, strings_size, checksum, reserved = struct.unpack_from("<8sIIII", data, 0)
        assert magic == b"HERDPLC1"
        self.count = count
        self.records = [struct.unpack_from("<iiIIII", data, 24 + 24 * n) for n in range(count)]
        self.strings = data[24 + 24 * count:]
        assert len(self.strings) == strings_size

    def text(self, offset):
        return self.strings[offset:self.strings.index(b"\0", offset)].decode()

    def nearest(self, latitude, longitude, radius_m):
        """(distance, place_id, name) of every place in the radius, nearest first."""
        found = []
        for index, (lat, lon, population, name, vicinity, place_id) in enumerate(self.records):
            if abs(lat / 1e6 - latitude) * 111194.9 > radius_m + 1:
                continue
            distance = haversine(latitude, longitude, lat / 1e6, lon / 1e6)
            if distance <= radius_m:
                found.append((distance, index, self.text(place_id), self.text(name)))
        found.sort()
        return [(distance, place_id, name) for distance, index, place_id, name in found]


def haversine(latitude1, longitude1, latitude2, longitude2):
    radians = math.pi / 180
    term = math.sin((latitude2 - latitude1) * radians / 2) ** 2 + math.cos(latitude1 * radians) \
        * math.cos(latitude2 * radians) * math.sin((longitude2 - longitude1) * radians / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(math.sqrt(min(1, term)))


@pytest.fixture(scope="module")
def places():
    return Places(PLACES_DATA)


@pytest.fixture
def offline(make_herd):
    return make_herd(graph={"Bailey": []}, settings={"places/provider": "offline"})


def ask(herd, latitude, longitude, radius_km, count, client="probe"):
    connection = herd.client("Bailey")
    connection.send(f"IAMAT {client} {latitude:+.6f}{longitude:+.6f} {time.time():.9f}\n")
    connection.line()
    at_line, response = connection.whatsat(client, radius_km, count)
    connection.close()
    return response


def check_against_brute_force(places, response, latitude, longitude, radius_km, count):
    expected = places.nearest(latitude, longitude, radius_km * 1000)[:count]
    results = response["results"]
    assert [r["place_id"] for r in results] == [place_id for _, place_id, _ in expected]
    distances = [haversine(latitude, longitude, r["geometry"]["location"]["lat"],
                           r["geometry"]["location"]["lng"]) for r in results]
    assert all(distance <= radius_km * 1000 + 0.5 for distance in distances)
    assert distances == sorted(distances)
    assert response["status"] == ("OK" if results else "ZERO_RESULTS")
    return results


def test_the_data_is_sane(places):
    assert 250000 < places.count < 280000
    kinds = {"geonames": 0, "airport": 0}
    for lat, lon, population, name, vicinity, place_id in places.records:
        assert -90e6 <= lat <= 90e6 and -180e6 <= lon <= 180e6
        assert places.text(name).strip()
        kinds[places.text(place_id).split(":")[0]] += 1
    assert kinds["geonames"] > 230000 and kinds["airport"] > 25000


def test_ucla_50_km(offline, places):
    response = ask(offline, *UCLA, 50, 20)
    results = check_against_brute_force(places, response, *UCLA, 50, 20)
    assert len(results) == 20
    names = [r["name"] for r in results]
    assert "Santa Monica" in names and "Beverly Hills" in names
    santa_monica = results[names.index("Santa Monica")]
    assert santa_monica["types"] == ["locality", "political"]
    assert santa_monica["place_id"].startswith("geonames:")
    assert santa_monica["population"] > 50000
    assert santa_monica["vicinity"] == "California, United States"
    airport = next(r for r in results if r["place_id"].startswith("airport:"))
    assert airport["types"] == ["airport"]
    #   Los Angeles and LAX are within 50 km too, just not among the 20
    #   nearest of a dense city: the provider's full answer holds them
    within = [place_id for _, place_id, _ in places.nearest(*UCLA, 50000)]
    assert "geonames:5368361" in within and "airport:KLAX" in within


def test_ucla_1_km_finds_only_what_is_within_1_km(offline, places):
    response = ask(offline, *UCLA, 1, 20)
    results = check_against_brute_force(places, response, *UCLA, 1, 20)
    assert len(results) < 20


def test_results_are_cut_to_max_results(offline, places):
    for count in (1, 3, 7):
        check_against_brute_force(places, ask(offline, *UCLA, 50, count), *UCLA, 50, count)


def test_mid_pacific_has_zero_results(offline):
    response = ask(offline, -30.0, -140.0, 50, 20)
    assert response == {"html_attributions": [], "results": [], "status": "ZERO_RESULTS"}


def test_places_on_both_sides_of_the_180th_meridian(offline, places):
    #   Between Savusavu (Fiji, east of 180) and Matei airport (west of it)
    results = check_against_brute_force(places, ask(offline, -16.75, 179.73, 50, 20),
                                        -16.75, 179.73, 50, 20)
    longitudes = [r["geometry"]["location"]["lng"] for r in results]
    assert any(lng > 0 for lng in longitudes) and any(lng < 0 for lng in longitudes)
    check_against_brute_force(places, ask(offline, -16.0, 179.99, 50, 20), -16.0, 179.99, 50, 20)


def test_near_the_poles(offline, places):
    check_against_brute_force(places, ask(offline, 64.8, -147.7, 50, 20), 64.8, -147.7, 50, 20)
    check_against_brute_force(places, ask(offline, 78.22, 15.65, 50, 20), 78.22, 15.65, 50, 20)
    check_against_brute_force(places, ask(offline, 89.99, 0, 50, 20), 89.99, 0, 50, 20)
    check_against_brute_force(places, ask(offline, -89.99, 139.27, 50, 20), -89.99, 139.27, 50, 20)


def test_random_real_coordinates_match_brute_force(offline, places):
    rng = random.Random(131)
    for _ in range(40):
        lat, lon = places.records[rng.randrange(places.count)][:2]
        radius = rng.choice([1, 10, 50])
        check_against_brute_force(places, ask(offline, lat / 1e6, lon / 1e6, radius, 20),
                                  lat / 1e6, lon / 1e6, radius, 20)


def test_startup_log_names_provider_and_count(offline, places):
    log = offline.log("Bailey")
    assert f"places: loaded {places.count} places from {PLACES_DATA}" in log
    assert f"places: provider offline ({places.count} places), answered in the server's loop" in log


def test_offline_answers_in_the_servers_loop_without_a_worker_pool(offline):
    """The offline provider needs no thread of its own: the server's
    threads are named, and none is a places worker"""
    connection = offline.client("Bailey")
    connection.send(b"IAMAT thready +34.068930-118.445127 1\n")
    connection.line()
    assert connection.whatsat("thready", 10, 3)[1]["status"] == "OK"
    pid = offline.processes["Bailey"].pid
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as comm:
            names.append(comm.read().strip())
    assert "herd-node" in names and "herd-places" in names and "herd-bio" in names, names
    assert "herd-google" not in names, names


def test_missing_data_forced_offline_is_a_clear_start_error(make_herd, tmp_path):
    herd = make_herd(graph={"Bailey": []}, start=False, settings={
        "places/provider": "offline", "places/offline/data": str(tmp_path / "none.bin")})
    process = herd.spawn("Bailey")
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 1
    assert stderr.decode().strip() == (f"herd: Bailey: places file {tmp_path / 'none.bin'} "
                                       "(places/offline/data): No such file or directory (build it with make data)")


def test_corrupt_data_forced_offline_is_a_clear_start_error(make_herd, tmp_path):
    corrupt = tmp_path / "corrupt.bin"
    shutil.copy(PLACES_DATA, corrupt)
    with open(corrupt, "r+b") as file:
        file.seek(5000)
        byte = file.read(1)
        file.seek(5000)
        file.write(bytes([byte[0] ^ 0x40]))
    herd = make_herd(graph={"Bailey": []}, start=False, settings={
        "places/provider": "offline", "places/offline/data": str(corrupt)})
    process = herd.spawn("Bailey")
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "checksum mismatch" in stderr.decode()


def test_missing_data_with_auto_falls_back_and_says_so(make_herd, tmp_path):
    truncated = tmp_path / "truncated.bin"
    with open(PLACES_DATA, "rb") as source:
        truncated.write_bytes(source.read(100000))
    herd = make_herd(graph={"Bailey": []}, settings={"places/offline/data": str(truncated)})
    response = ask(herd, *UCLA, 10, 5)
    assert response["status"] == "UNKNOWN_ERROR"
    assert "no places provider" in response["error_message"]
    assert "truncated" in herd.log("Bailey")
