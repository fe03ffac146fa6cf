"""Reports: the data model, reading and writing, and rendering for people."""
