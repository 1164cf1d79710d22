"""`envbuild ui`: the workspace in a browser, a viewer over the catalog and the cache (not a server to depend on).

- `workspace`: what the pages show, read through the catalog's and the index's public functions;
- `intake`: a pasted or uploaded spec registered as `env create --file` would;
- `builds`: builds started from the page, and builds of other processes followed through their journals;
- `charts`: the cache page's SVG charts;
- `guard`: the token and same-origin checks in front of every route;
- `app`: the Starlette application (templates/ and static/ ship beside it) and `serve`.
"""
