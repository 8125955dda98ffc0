"""One module per DAG stage. Each exposes `run(...)`, called by the `g2d` command line."""
