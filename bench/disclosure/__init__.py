"""Disclosure reports (issue 17): the compute KPIs a site, city, region or country withholds, in one signed document
that rolls up from capacity reports, with every figure's tier, a claims ledger and an audit by sampling.

Modules, bottom up: declaration (the operator's signed TOML), tree (the leaves and the device-once rule), kpis
(figures per precision, inventory, readiness), claims (the ledger), sampling (the auditor's sample and its bound),
document (build, sign, the published JSON Schema, the strict reader, re-derivation), render (Markdown, HTML).
"""
