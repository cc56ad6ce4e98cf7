"""What the Streamlit pages call: settings, confined paths, run store, job runner, maps, forms.

Everything here is plain Python, tested without a browser; the pages under ``pages/`` stay thin.
Submodules import lazily (no torch, rasterio or streamlit at package import).
"""
