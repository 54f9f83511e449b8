"""The documentation a reader can find their way in: a short README that
maps docs/, and every link between them leading somewhere (a file that
exists, and a heading in it for an #anchor)."""

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor for a heading"""
    text = re.sub(r"[^a-z0-9 \-]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    with open(path) as file:
        return {slug(line.lstrip("#")) for line in file if line.startswith("#")}


def documents():
    folder = os.path.join(ROOT, "docs")
    return [os.path.join(ROOT, "README.md")] + sorted(
        os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".md"))


def test_every_link_leads_somewhere():
    checked = 0
    for document in documents():
        with open(document) as file:
            text = file.read()
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue                        #   http(s), mailto: not ours to check
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(document), path)) if path else document
            assert os.path.exists(resolved), f"{os.path.relpath(document, ROOT)}: {target}: no such file"
            if anchor:
                assert anchor in anchors(resolved), f"{os.path.relpath(document, ROOT)}: {target}: no such heading"
            checked += 1
    assert checked > 10


def test_the_readme_is_a_front_page_that_maps_every_document():
    with open(os.path.join(ROOT, "README.md")) as file:
        readme = file.read()
    assert readme.count("\n") < 200
    for document in documents()[1:]:
        name = os.path.relpath(document, ROOT)
        assert f"]({name})" in readme, f"the README does not map {name}"
