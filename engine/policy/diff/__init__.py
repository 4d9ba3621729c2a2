"""The semantic diff of two policy documents, matched by ids, and its renderings."""
