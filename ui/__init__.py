"""Streamlit glue: cached models, the per-model result cache and widgets shared by pages."""
