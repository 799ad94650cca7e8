"""The reference pages of the docs site, generated from the code (`python -m scripts.gen_reference`)."""
