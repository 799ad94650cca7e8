"""Is the pipeline worth it? A/B evaluation of a candidate against a baseline with an LLM judge: offline
over a dataset (`moa-gateway eval`) and on live traffic (a pipeline's `shadow`)."""
