"""Data files shipped with lifecircle: profiles, taxonomies, small samples."""
