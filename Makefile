# The project's two commands (see README.md).
.PHONY: demo test lint bench screenshots

demo:            ## a database with the suite and demo data, served on http://127.0.0.1:8069
	bash scripts/demo.sh

test:            ## every test: pure pytest, Odoo tests on a fresh database, ruff, pylint-odoo
	bash scripts/test.sh

lint:
	ruff check . && ruff format --check .

bench:           ## the benchmarks under benchmarks/ (figures printed, nothing asserted)
	for b in benchmarks/bench_*.py; do python3 $$b || exit 1; done

screenshots:     ## PNGs of the running demo's main screens in docs/screenshots/ (make demo first;
                 ## pays a recharge of 50 in the portal to show its result)
	python3 scripts/screenshots.py --pay
