"""A group's report: tables and figures from its CSVs, and the figures of a single run."""
