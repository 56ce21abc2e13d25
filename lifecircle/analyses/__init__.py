"""Analyses that take a :class:`~lifecircle.pipeline.Result`: isochrones and service areas,
the idle-site inventory, recommendations and Chinese standards. They never render."""
