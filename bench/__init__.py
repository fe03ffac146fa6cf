"""bench: measured, verifiable compute capacity of AI nodes and clusters.

The house, floor by floor, top to bottom. A room is a folder of bench/ or a module at its top; each room imports only
rooms on floors below its own, and rooms on one floor do not import each other. A room marked * loads no torch:
it imports no torch, nor any module that imports torch at its top (verify, aggregate and the renderers run on an
auditor's laptop), so it cannot import a workload either. tests/test_layers.py reads this table: a new room goes on a
floor here, and an import that runs up a floor, sideways, round a circle, or to torch from a starred room fails there.

    __main__                                       python -m bench
    cli                                            the verbs: parse, call the library, print
    orchestrate                                    bench run: the suite across devices and ranks
    plans planning recover audit* challenge        a suite's order; each workload's steps; spools; bench verify
    runner disclosure*                             lanes and workers; regional disclosure
    report* suite* preflight                       what reads reports; the suite config; bench doctor
    workloads registry*                            what measures; its descriptor (plain data for the report layer)
    figures* launch                                every formula, from raw samples; rank placement
    measure provenance*                            timers, stats and telemetry; where the code came from
    hardware precision                             the hardware seam; the precisions bench knows
    model*                                         the data model: reports, records, signing, specs
"""

__version__ = "0.1.0"
