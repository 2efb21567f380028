"""Audit a labelled dataset: read it, predict every item, measure, report."""
