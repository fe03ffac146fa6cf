"""The data model, bench's ground floor: what a run measured and how it is written down, read back and signed.

Everything above stands on it and it stands on nothing of bench's: no torch, no workload, no registry, no report
module, so a workload, the figures, the registry and an auditor's verify all read the same types without loading
each other. The name is the design notes' ("the data model"): a report is these types written to a file.

Its modules, each importing only those listed before it:

- errors: ReportError, the one-line refusal every reader raises.
- strict_json: the strict JSON parse every document gets (duplicate keys, NaN, depth and size limits).
- samples: raw samples as compact exact blocks, and samples_digest, the SHA-256 that binds them.
- canonical: RFC 8785 canonical bytes and the signed view of a document.
- keys: Ed25519 key files, key ids, trust lists and the signature block's spelling.
- specs: workload specs as plain data (TrainSpec and its presets).
- reports: Measurement, NodeReport, CapacityReport, their JSON form and its validation, schema versions.
- records: node reports as a stream of signed, chained records (schema version 3).
- intake: the one door a file comes in through (regular files only, size limits, read once).
- sign: signing and checking a document or a stream; its digest.
- metrics, tables: what a workload's descriptor hands the report layer as plain data (a Metric; a Grid of cells).
"""
