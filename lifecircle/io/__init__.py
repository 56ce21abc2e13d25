"""Reading and writing: OSM extracts, user tables (Amap/Baidu POIs, sites, population), Chinese
coordinate systems, projections, boundaries and the analysis folder format."""
