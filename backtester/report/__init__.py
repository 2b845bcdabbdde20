"""Reports people look at: the run tearsheet (HTML and notebook), sweep and run comparisons.

The only package that imports the plotting library (Bokeh, the `report` extra). Nothing outside it
imports it at module level, so the core library works without the extra.
"""
