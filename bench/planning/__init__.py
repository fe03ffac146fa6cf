"""Each workload's own planning: what its section of a suite config (and its single-workload verb) turns into, as
runner steps and measurement generators. One module per workload, named by its descriptor (bench.registry: `steps`
= "bench.planning.<name>:suite_steps"); bench.plans only orders the steps the descriptors give, and names none.

A module here sits above bench.workloads (it builds runner.Step around the code that measures) and below the CLI and
bench.orchestrate, which call it for the single-workload verbs and the multi-rank part of a suite."""
