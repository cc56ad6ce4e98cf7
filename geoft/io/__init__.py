"""Raster input/output for predictions: GeoTIFF writing and scene-scale tiled prediction."""
