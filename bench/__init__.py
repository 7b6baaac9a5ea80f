"""commq's benchmark (issue 5): `make bench` / `make bench-quick`, never a timed unit test.

Run ``python -m bench --help``. Each scenario makes its own throwaway database
(SQLite file under a temp dir, PostgreSQL ``commq_bench_<random>`` on
127.0.0.1:5432), measures, and drops it. Results go to ``bench/results.json``.
"""
