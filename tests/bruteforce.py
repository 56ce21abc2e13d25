"""An independent brute-force reference: networkx on a graph split at every snapped point.

Each edge is cut at the homes and facilities that sit on it; each point hangs off its cut by a
leg edge. Walking times are then plain networkx Dijkstra, with none of the engine's formulas
(no seeds with initial costs, no same-edge special case).
"""

from __future__ import annotations

import networkx as nx
import numpy as np


def split_graph(net, home_snap, fac_snaps):
    """DiGraph with nodes ("n", i), ("h", j), ("f", c, j); weights in seconds."""
    speed = net.speed_mps
    g = nx.DiGraph()
    on_edge: dict[int, list] = {}
    for j in range(len(home_snap)):
        e = int(home_snap.edge[j])
        if e >= 0:
            on_edge.setdefault(e, []).append((float(home_snap.offset[j]), ("h", j), float(home_snap.leg[j])))
    for c, snap in enumerate(fac_snaps):
        # every entry of a facility (an area's several) leads to the same facility node
        own, edge, off, leg = snap.entries()
        for i in range(len(own)):
            j, e = int(own[i]), int(edge[i])
            if e >= 0 and snap.edge[j] >= 0:
                on_edge.setdefault(e, []).append((float(off[i]), ("f", c, j), float(leg[i])))

    def add(a, b, w):
        if g.has_edge(a, b):
            w = min(w, g[a][b]["weight"])
        g.add_edge(a, b, weight=w)

    for i in range(net.n_nodes):
        g.add_node(("n", i))
    for e in range(net.n_edges):
        u, v, length = int(net.edge_u[e]), int(net.edge_v[e]), float(net.edge_len[e])
        pts = sorted(on_edge.get(e, []), key=lambda p: p[0])
        chain = [(0.0, ("n", u))]
        for k, (off, key, leg) in enumerate(pts):
            cut = ("cut", e, k)
            chain.append((off, cut))
            if key[0] == "h":
                add(key, cut, leg / speed)
            else:
                add(cut, key, leg / speed)
        chain.append((length, ("n", v)))
        for (o1, a), (o2, b) in zip(chain[:-1], chain[1:]):
            w = max(o2 - o1, 0.0) / speed
            add(a, b, w)
            if not net.edge_oneway[e]:
                add(b, a, w)
    return g


def nearest_minutes(g, n_homes, fac_snap_count, c):
    """Minutes from each home to the nearest facility of category c (NaN if none)."""
    targets = [("f", c, j) for j in range(fac_snap_count) if g.has_node(("f", c, j))]
    out = np.full(n_homes, np.nan)
    if not targets:
        return out
    dist = nx.multi_source_dijkstra_path_length(g.reverse(copy=False), targets, weight="weight")
    for j in range(n_homes):
        d = dist.get(("h", j))
        if d is not None:
            out[j] = d / 60.0
    return out


def all_times(g, n_homes, fac_count, c, cutoff_min):
    """(home, facility) -> minutes for pairs within cutoff."""
    out = {}
    for j in range(n_homes):
        if not g.has_node(("h", j)):
            continue
        d = nx.single_source_dijkstra_path_length(g, ("h", j), cutoff=cutoff_min * 60.0 + 1e-9,
                                                  weight="weight")
        for key, val in d.items():
            if key[0] == "f" and key[1] == c:
                out[(j, key[2])] = val / 60.0
    return out
