"""Annotation models, one module per topic; import them from here."""
