"""Small OSM XML districts written by the tests: a street grid with homes and named facilities,
so that hostile names can be put where OSM would carry them."""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

LAT0, LON0 = 32.040, 118.780      # Nanjing, so GCJ-02 routes apply too
STEP = 0.0009                     # ~100 m between streets


def grid_osm(names: dict[str, str] | None = None, n: int = 5, areas: dict[str, str] | None = None) -> str:
    """An OSM XML text: an ``n`` × ``n`` grid of residential streets, a residential building in
    every block, and one facility node per ``{tag: name}`` entry of ``names`` (``tag`` as
    ``key=value``), placed in the blocks in turn; ``areas`` adds one named square polygon
    (~30 m × 30 m) per ``{tag: name}`` entry the same way (e.g. ``landuse=brownfield``)."""
    names = names or {"amenity=cafe": "Corner Café"}
    nodes, ways = [], []
    nid, wid = 1, 1000

    def node(lat, lon, tags=()):
        nonlocal nid
        nid += 1
        body = "".join(f'<tag k={quoteattr(k)} v={quoteattr(v)}/>' for k, v in tags)
        nodes.append(f'<node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}" version="1">{body}</node>')
        return nid

    def way(refs, tags):
        nonlocal wid
        wid += 1
        body = "".join(f'<nd ref="{r}"/>' for r in refs)
        body += "".join(f'<tag k={quoteattr(k)} v={quoteattr(v)}/>' for k, v in tags)
        ways.append(f'<way id="{wid}" version="1">{body}</way>')

    grid = [[node(LAT0 + i * STEP, LON0 + j * STEP) for j in range(n)] for i in range(n)]
    for i in range(n):
        way([grid[i][j] for j in range(n)], [("highway", "residential"), ("name", f"Row {i}")])
        way([grid[j][i] for j in range(n)], [("highway", "residential"), ("name", f"Col {i}")])
    blocks = [(i, j) for i in range(n - 1) for j in range(n - 1)]
    for i, j in blocks:                                  # a home in every block
        la, lo = LAT0 + (i + 0.2) * STEP, LON0 + (j + 0.2) * STEP
        d = STEP * 0.25
        ring = [node(la, lo), node(la, lo + d), node(la + d, lo + d), node(la + d, lo)]
        way(ring + ring[:1], [("building", "residential"), ("building:levels", "6")])
    for k, (tag, name) in enumerate(names.items()):
        i, j = blocks[(k * 5 + 3) % len(blocks)]
        key, value = tag.split("=", 1)
        node(LAT0 + (i + 0.7) * STEP, LON0 + (j + 0.7) * STEP, [(key, value), ("name", name)])
    for k, (tag, name) in enumerate((areas or {}).items()):
        i, j = blocks[(k * 7 + 1) % len(blocks)]
        la, lo = LAT0 + (i + 0.45) * STEP, LON0 + (j + 0.45) * STEP
        d = STEP * 0.3
        ring = [node(la, lo), node(la, lo + d), node(la + d, lo + d), node(la + d, lo)]
        key, value = tag.split("=", 1)
        way(ring + ring[:1], [(key, value), ("name", name)])
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"test\">\n"
            + "\n".join(nodes + ways) + "\n</osm>\n")


# --------------------------------------------------------------------------------------------
# districts drawn in metres

LOCAL_LAT0, LOCAL_LON0 = 40.4168, -3.7038     # Madrid
_M_LAT = 1 / 111_320.0
_M_LON = 1 / (111_320.0 * math.cos(math.radians(LOCAL_LAT0)))


def local_xy(x, y) -> tuple[float, float]:
    """(lon, lat) of the point ``x`` m east and ``y`` m north of the local origin, at OSM's
    precision (7 decimals, ~1 cm: what OSM files carry and libosmium stores)."""
    return round(LOCAL_LON0 + x * _M_LON, 7), round(LOCAL_LAT0 + y * _M_LAT, 7)


class LocalOsm:
    """OSM XML written with coordinates in metres east/north of a local origin: untagged nodes
    at the same (x, y) are one node, so ways that meet at a point share it."""

    def __init__(self):
        self.nodes, self.ways, self.nid, self.wid = [], [], 0, 1000
        self.at: dict[tuple, int] = {}

    def node(self, x, y, tags=()):
        if not tags and (x, y) in self.at:
            return self.at[(x, y)]
        self.nid += 1
        lon, lat = local_xy(x, y)
        body = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags)
        self.nodes.append(f'<node id="{self.nid}" lat="{lat:.7f}" lon="{lon:.7f}" '
                          f'version="1">{body}</node>')
        if not tags:
            self.at[(x, y)] = self.nid
        return self.nid

    def way(self, pts, tags, closed=False):
        self.wid += 1
        refs = [self.node(x, y) for x, y in pts]
        if closed:
            refs.append(refs[0])
        body = "".join(f'<nd ref="{r}"/>' for r in refs)
        body += "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags)
        self.ways.append(f'<way id="{self.wid}" version="1">{body}</way>')
        return self.wid

    def text(self) -> str:
        return ("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"test\">\n"
                + "\n".join(self.nodes + self.ways) + "\n</osm>\n")
